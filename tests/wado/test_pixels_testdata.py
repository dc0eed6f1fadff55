"""Every image-bearing file of pydicom's offline test data, every frame, against pydicom's decode.

Loaded through ``dicomfile:`` ids and loadstone's dispatch.  The reference is
``Dataset.pixel_array`` (YBR converted to RGB, pydicom's default) with the
palette applied by :func:`pydicom.pixels.apply_color_lut`: equal for lossless
syntaxes, within 1 for lossy JPEG / JPEG 2000 (decoders differ in their
IDCT / wavelet rounding).  A file pydicom cannot decode must fail with a
typed loadstone error that says why, never give pixels.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pytest

import loadstone

LOSSY = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.91",
         "1.2.840.10008.1.2.4.203"}


def _image_files() -> list[tuple[str, str]]:
    """(name relative to the test-data folder, path) of every file with pixel data."""
    import pydicom
    from pydicom.data import get_testdata_files

    found = []
    for path in sorted(get_testdata_files()):
        if not os.path.isfile(path):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, force=True, stop_before_pixels=False)
        except Exception:
            continue
        if any(keyword in ds for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
            name = path.split("test_files" + os.sep, 1)[-1]
            found.append((name, path))
    return found


IMAGE_FILES = _image_files()


def _reference(path: str) -> tuple[Any, np.ndarray | None, str | None]:
    """(dataset, pydicom's pixels or None, why pydicom failed)."""
    import pydicom
    from pydicom.pixels import apply_color_lut

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path, force=True)
        try:
            pixels = ds.pixel_array
            if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
                pixels = apply_color_lut(pixels, ds)
        except Exception as exc:
            return ds, None, f"{type(exc).__name__}: {exc}"
    return ds, pixels, None


def _spacing(ds: Any, frame: int) -> Any:
    """Pixel Spacing of a frame: functional groups (per-frame, then shared), top level, imager."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame - 1),
                          ("SharedFunctionalGroupsSequence", 0)):
        items = ds.get(groups)
        if items and len(items) > index and "PixelMeasuresSequence" in items[index]:
            measures = items[index].PixelMeasuresSequence[0]
            if measures.get("PixelSpacing"):
                return measures.PixelSpacing
    return ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")


def _frames(ds: Any) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def test_there_is_test_data() -> None:
    assert len(IMAGE_FILES) >= 60, "pydicom's offline test data should hold ~90 image files"


@pytest.mark.parametrize(("name", "path"), IMAGE_FILES, ids=[name for name, _ in IMAGE_FILES])
def test_testdata_file_matches_pydicom(name: str, path: str) -> None:
    ds, reference, _why = _reference(path)
    frames = _frames(ds) if reference is not None else 1
    ids = [f"dicomfile:{path}" + (f"?frame={n}" if frames > 1 else "") for n in range(1, frames + 1)]
    loads = [loadstone.load_image(image_id) for image_id in ids]

    if reference is None:
        # pydicom cannot decode it: loadstone must refuse with a typed error, not produce pixels.
        with pytest.raises(loadstone.LoadstoneError) as info:
            loads[0].result(60)
        assert isinstance(info.value, (loadstone.InvalidImageError, loadstone.UnsupportedError)), info.value
        assert str(info.value), "the error must say why"
        return

    syntax = str(ds.file_meta.TransferSyntaxUID)
    tolerance = 1 if syntax in LOSSY else 0
    photometric = str(ds.PhotometricInterpretation)
    color = int(ds.get("SamplesPerPixel", 1)) > 1 or photometric == "PALETTE COLOR"
    for number, load in enumerate(loads, 1):
        spacing = _spacing(ds, number)
        image = load.result(60)
        expected = reference[number - 1] if frames > 1 else reference
        assert image.pixel_data.shape == expected.shape, f"frame {number}"
        difference = np.abs(image.pixel_data.astype(np.int64) - expected.astype(np.int64))
        assert int(difference.max()) <= tolerance, f"frame {number} differs by up to {difference.max()}"
        assert image.rows == int(ds.Rows) and image.columns == int(ds.Columns)
        assert image.color is color
        assert image.photometric_interpretation == (("RGBA" if expected.shape[-1] == 4 else "RGB")
                                                    if color else photometric)
        assert image.invert is (photometric == "MONOCHROME1")
        assert image.slope == float(ds.get("RescaleSlope", 1) or 1)
        assert image.intercept == float(ds.get("RescaleIntercept", 0) or 0)
        if spacing:
            assert image.row_pixel_spacing == pytest.approx(float(spacing[0]))
            assert image.column_pixel_spacing == pytest.approx(float(spacing[1]))
        else:
            assert image.row_pixel_spacing is None
        assert image.min_pixel_value == float(image.pixel_data.min())
        assert image.max_pixel_value == float(image.pixel_data.max())
        assert not image.pixel_data.flags.writeable, "cached pixels are shared: read-only"
        loadstone.testing.check_image(image, ids[number - 1])


def test_twelve_bit_jpeg_extended_names_the_package(testdata: Any) -> None:
    from pydicom.pixels import get_decoder

    if "pylibjpeg" in get_decoder("1.2.840.10008.1.2.4.51").available_plugins:
        pytest.skip("pylibjpeg-libjpeg is installed: 12-bit JPEG Extended decodes")
    load = loadstone.load_image(f"dicomfile:{testdata('JPGExtended.dcm')}")
    with pytest.raises(loadstone.UnsupportedError, match="pylibjpeg-libjpeg"):
        load.result(30)


def test_undecodable_j2k_is_a_typed_error(testdata: Any) -> None:
    load = loadstone.load_image(f"dicomfile:{testdata('JPEG2000-embedded-sequence-delimiter.dcm')}")
    with pytest.raises(loadstone.InvalidImageError, match="cannot decode"):
        load.result(30)
