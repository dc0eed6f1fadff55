"""Pixel decoding: descriptions, native and compressed frames, colour, caps, decoder choice."""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import synthetic
from pydicom.encaps import generate_frames
from pydicom.uid import (
    JPEG2000,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

import loadstone
from loadstone_wado import config
from loadstone_wado.pixels import (
    PaletteLUT,
    PixelDescription,
    available_transfer_syntaxes,
    decode_frame,
    decoder_order,
    image_from_dataset,
    image_from_frame,
)


def _reload(ds: pydicom.Dataset) -> pydicom.Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def _first_frame(ds: pydicom.Dataset) -> bytes:
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        return next(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1))))
    return bytes(ds.PixelData)


# -- descriptions ------------------------------------------------------------------
def test_description_from_dataset(testdata: Callable[[str], str]) -> None:
    ds = pydicom.dcmread(testdata("CT_small.dcm"))
    description = PixelDescription.from_dataset(ds)
    assert (description.rows, description.columns, description.bits_allocated, description.bits_stored) == (
        128, 128, 16, 16)
    assert description.pixel_representation == 1
    assert description.photometric_interpretation == "MONOCHROME2"
    assert description.rescale_intercept == float(ds.RescaleIntercept)
    assert description.row_pixel_spacing == pytest.approx(float(ds.PixelSpacing[0]))
    assert description.stored_dtype == np.dtype("int16")
    assert description.total_nbytes == 128 * 128 * 2


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "examples_palette.dcm", "SC_rgb_rle.dcm",
                                  "rtdose.dcm", "liver_1frame.dcm", "examples_ybr_color.dcm"])
def test_description_from_dicom_json_matches_dataset(testdata: Callable[[str], str], name: str) -> None:
    ds = pydicom.dcmread(testdata(name))
    expected = PixelDescription.from_dataset(ds)
    header = copy.deepcopy(ds)
    del header.PixelData
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attrs = header.to_json_dict(bulk_data_threshold=1 << 30)
    described = PixelDescription.from_dicom_json(attrs)
    for field in ("rows", "columns", "samples_per_pixel", "bits_allocated", "bits_stored", "high_bit",
                  "pixel_representation", "photometric_interpretation", "planar_configuration",
                  "number_of_frames", "rescale_slope", "rescale_intercept", "window_center", "window_width",
                  "voi_lut_function", "row_pixel_spacing", "column_pixel_spacing", "float_pixel"):
        assert getattr(described, field) == getattr(expected, field), field
    if expected.palette is not None:
        assert described.palette is not None
        assert np.array_equal(described.palette.table, expected.palette.table)


def test_palette_without_inline_data_is_unsupported(testdata: Callable[[str], str]) -> None:
    ds = pydicom.dcmread(testdata("examples_palette.dcm"))
    attrs = {"00280010": {"vr": "US", "Value": [2]}, "00280011": {"vr": "US", "Value": [2]},
             "00280100": {"vr": "US", "Value": [8]}, "00280101": {"vr": "US", "Value": [8]},
             "00280004": {"vr": "CS", "Value": ["PALETTE COLOR"]},
             "00281101": {"vr": "US", "Value": [256, 0, 16]},
             "00281201": {"vr": "OW", "BulkDataURI": "http://host/bulk/1"}}
    description = PixelDescription.from_dicom_json(attrs)
    assert description.palette is None
    with pytest.raises(loadstone.UnsupportedError, match="Palette Color Lookup Table"):
        decode_frame(bytes(4), description, ExplicitVRLittleEndian, image_id="x")
    assert PaletteLUT.from_dataset(ds).channels == 3


@pytest.mark.parametrize(("changes", "error", "match"), [
    ({"rows": 0}, loadstone.InvalidImageError, "Rows"),
    ({"columns": 70000}, loadstone.InvalidImageError, "Columns"),
    ({"bits_allocated": 12}, loadstone.InvalidImageError, "Bits Allocated"),
    ({"bits_stored": 17}, loadstone.InvalidImageError, "Bits Stored"),
    ({"samples_per_pixel": 2}, loadstone.InvalidImageError, "Samples per Pixel"),
    ({"pixel_representation": 2}, loadstone.InvalidImageError, "Pixel Representation"),
    ({"photometric_interpretation": "HSV"}, loadstone.UnsupportedError, "Photometric"),
    ({"number_of_frames": 0}, loadstone.InvalidImageError, "Number of Frames"),
])
def test_description_validation(changes: dict[str, Any], error: type[Exception], match: str) -> None:
    values: dict[str, Any] = {"rows": 4, "columns": 4}
    values.update(changes)
    with pytest.raises(error, match=match):
        PixelDescription(**values)


def test_missing_required_elements_are_named() -> None:
    with pytest.raises(loadstone.InvalidImageError, match=r"\(0028,0010\) Rows"):
        PixelDescription.from_dicom_json({"00280011": {"vr": "US", "Value": [4]}})
    ds = pydicom.Dataset()
    ds.Rows, ds.Columns, ds.BitsAllocated = 4, 4, 8
    with pytest.raises(loadstone.InvalidImageError, match="Photometric Interpretation"):
        PixelDescription.from_dataset(ds)


# -- native frames -------------------------------------------------------------------
def _native(array: np.ndarray, **values: Any) -> tuple[bytes, PixelDescription]:
    description = PixelDescription(rows=array.shape[0], columns=array.shape[1], **values)
    return array.tobytes(), description


def test_native_view_is_read_only_and_equal() -> None:
    array = np.arange(-8, 8, dtype=np.int16).reshape(4, 4)
    frame, description = _native(array, bits_allocated=16, bits_stored=16, pixel_representation=1)
    decoded = decode_frame(frame, description, ExplicitVRLittleEndian, image_id="x")
    assert np.array_equal(decoded, array) and decoded.dtype == np.int16
    assert not decoded.flags.writeable


@pytest.mark.parametrize(("stored", "signed", "raw", "expected"), [
    (12, True, [0x0FFF, 0x0800, 0x07FF, 5], [-1, -2048, 2047, 5]),       # sign extension needed
    (12, True, [-1, -2048, 2047, 5], [-1, -2048, 2047, 5]),              # already clean
    (12, False, [0xF123, 0x0FFF, 0, 1], [0x0123, 0x0FFF, 0, 1]),         # garbage high bits masked
    (12, False, [0x0123, 0x0FFF, 0, 1], [0x0123, 0x0FFF, 0, 1]),         # already clean
])
def test_unused_bits_as_pydicom(stored: int, signed: bool, raw: list[int], expected: list[int]) -> None:
    dtype = np.int16 if signed else np.uint16
    array = np.array(raw, dtype=np.int64).astype(dtype).reshape(2, 2)
    frame, description = _native(array, bits_allocated=16, bits_stored=stored,
                                 pixel_representation=int(signed))
    decoded = decode_frame(frame, description, ExplicitVRLittleEndian, image_id="x")
    assert decoded.ravel().tolist() == expected
    from pydicom.pixels import get_decoder

    reference, _ = get_decoder(ExplicitVRLittleEndian).as_array(
        frame, rows=2, columns=2, samples_per_pixel=1, bits_allocated=16, bits_stored=stored,
        pixel_representation=int(signed), photometric_interpretation="MONOCHROME2", number_of_frames=1,
        pixel_keyword="PixelData")
    assert np.array_equal(decoded, reference)


def test_big_endian_32_bit_and_float() -> None:
    array = np.array([[1, 70000], [3, 2**31 - 1]], dtype=np.uint32)
    description = PixelDescription(rows=2, columns=2, bits_allocated=32, bits_stored=32)
    decoded = decode_frame(array.astype(">u4").tobytes(), description, ExplicitVRBigEndian, image_id="x")
    assert decoded.dtype == np.uint32 and np.array_equal(decoded, array)
    floats = np.array([[0.5, -1.25], [3e10, np.pi]], dtype=np.float32)
    description = PixelDescription(rows=2, columns=2, bits_allocated=32, float_pixel=True)
    decoded = decode_frame(floats.tobytes(), description, ExplicitVRLittleEndian, image_id="x")
    assert decoded.dtype == np.float32 and np.array_equal(decoded, floats)
    doubles = floats.astype(np.float64)
    description = PixelDescription(rows=2, columns=2, bits_allocated=64, float_pixel=True)
    assert np.array_equal(decode_frame(doubles.tobytes(), description, ExplicitVRLittleEndian, image_id="x"),
                          doubles)


def test_one_bit_frames_unpack_across_byte_boundaries() -> None:
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 2, size=(3, 3, 5), dtype=np.uint8)  # 15 bits a frame: not byte-aligned
    packed = np.packbits(frames.ravel(), bitorder="little").tobytes()
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns, ds.NumberOfFrames = 3, 5, 3
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    ds.PixelData = packed
    for frame in range(3):
        image = image_from_dataset(f"x{frame}", ds, frame + 1)
        assert np.array_equal(image.pixel_data, frames[frame]), frame


def test_planar_configuration_one_and_ybr_full_422_native() -> None:
    rgb = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    planar = np.ascontiguousarray(rgb.transpose(2, 0, 1)).tobytes()
    description = PixelDescription(rows=2, columns=4, samples_per_pixel=3, bits_allocated=8, bits_stored=8,
                                   photometric_interpretation="RGB", planar_configuration=1)
    decoded = decode_frame(planar, description, ExplicitVRLittleEndian, image_id="x")
    assert np.array_equal(decoded, rgb) and decoded.flags.c_contiguous


def test_ybr_full_and_rct_become_rgb(testdata: Callable[[str], str]) -> None:
    for name in ("SC_ybr_full_422_uncompressed.dcm", "SC_rgb_dcmtk_+eb+cy+n1.dcm", "GDCMJ2K_TextGBR.dcm"):
        ds = pydicom.dcmread(testdata(name))
        image = image_from_dataset(name, ds, 1)
        assert image.photometric_interpretation == "RGB" and image.color
        assert image.extra["original_photometric_interpretation"] == str(ds.PhotometricInterpretation)


def test_truncated_native_frame() -> None:
    description = PixelDescription(rows=4, columns=4, bits_allocated=16, bits_stored=16)
    with pytest.raises(loadstone.InvalidImageError, match="truncated"):
        decode_frame(bytes(30), description, ExplicitVRLittleEndian, image_id="x")


def test_pydicom_native_override_agrees() -> None:
    array = np.random.default_rng(2).integers(-2000, 2000, size=(16, 8), dtype=np.int16)
    frame, description = _native(array, bits_allocated=16, bits_stored=12, pixel_representation=1)
    ours = decode_frame(frame, description, ExplicitVRLittleEndian, image_id="x")
    config.configure(decoders={ExplicitVRLittleEndian: "pydicom"})
    theirs = decode_frame(frame, description, ExplicitVRLittleEndian, image_id="x")
    assert np.array_equal(ours, theirs)


# -- compressed frames ---------------------------------------------------------------
COMPRESSED = [RLELossless, JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, JPEGBaseline8Bit,
              JPEGLosslessSV1]


@pytest.mark.parametrize("uid", COMPRESSED, ids=[str(uid) for uid in COMPRESSED])
def test_synthetic_frames_equal_pydicom(uid: str, synthetic_files: Callable[..., list[Path]]) -> None:
    path = synthetic_files(uid, 2)[1]
    ds = pydicom.dcmread(path)
    frame = _first_frame(ds)
    description = PixelDescription.from_dataset(ds)
    decoded = decode_frame(frame, description, uid, image_id="x")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = ds.pixel_array
    tolerance = 1 if uid in (JPEGBaseline8Bit, JPEG2000) else 0
    assert decoded.dtype == reference.dtype
    assert int(np.abs(decoded.astype(np.int64) - reference.astype(np.int64)).max()) <= tolerance
    image = image_from_frame("x", frame, description, uid)
    assert image.extra["decoder"].split()[0] == decoder_order(uid, description)[0]
    loadstone.testing.check_image(image, "x")


@pytest.mark.parametrize("uid", [JPEGLSLossless, JPEG2000Lossless, RLELossless])
def test_every_installed_decoder_agrees(uid: str, synthetic_files: Callable[..., list[Path]]) -> None:
    ds = pydicom.dcmread(synthetic_files(uid, 2)[0])
    frame, description = _first_frame(ds), PixelDescription.from_dataset(ds)
    results = {}
    for name in decoder_order(uid, description):
        config.configure(decoders={uid: name})
        results[name] = decode_frame(frame, description, uid, image_id="x")
    first = next(iter(results.values()))
    for name, decoded in results.items():
        assert np.array_equal(decoded, first), name


def test_rgb_frames(synthetic_files: Callable[..., list[Path]]) -> None:
    for uid in (RLELossless, JPEG2000Lossless, JPEGLSLossless):
        ds = synthetic.rgb_dataset(32, 48, frames=2)
        ds = _reload(synthetic.compress(ds, uid))
        reference = ds.pixel_array
        for number in (1, 2):
            image = image_from_dataset("rgb", ds, number)
            assert image.color and image.pixel_data.shape == (32, 48, 3)
            assert np.array_equal(image.pixel_data, reference[number - 1]), uid


def test_corrupt_compressed_frame_is_invalid(synthetic_files: Callable[..., list[Path]]) -> None:
    for uid in (JPEGLSLossless, JPEG2000Lossless, JPEGBaseline8Bit):
        ds = pydicom.dcmread(synthetic_files(uid, 1)[0])
        description = PixelDescription.from_dataset(ds)
        with pytest.raises(loadstone.InvalidImageError):
            decode_frame(b"\xff\xd8" + bytes(200), description, uid, image_id="x")
        with pytest.raises(loadstone.InvalidImageError):
            decode_frame(b"", description, uid, image_id="x")


def test_unknown_syntax_is_unsupported() -> None:
    description = PixelDescription(rows=2, columns=2)
    with pytest.raises(loadstone.UnsupportedError, match="not supported"):
        decode_frame(bytes(8), description, "1.2.840.10008.1.2.4.100", image_id="x")  # MPEG2


def test_missing_decoder_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from loadstone_wado.pixels import backends

    monkeypatch.setattr(backends, "available", lambda uid: ())
    description = PixelDescription(rows=2, columns=2)
    with pytest.raises(loadstone.UnsupportedError, match="pyjpegls"):
        decode_frame(bytes(8), description, JPEGLSLossless, image_id="x")
    with pytest.raises(loadstone.UnsupportedError, match="pylibjpeg-openjpeg"):
        decode_frame(bytes(8), description, "1.2.840.10008.1.2.4.201", image_id="x")


def test_decoder_override_must_be_installed() -> None:
    config.configure(decoders={JPEGLSLossless: "nosuchcodec"})
    with pytest.raises(loadstone.UnsupportedError, match="nosuchcodec"):
        decode_frame(bytes(8), PixelDescription(rows=2, columns=2), JPEGLSLossless, image_id="x")


def test_available_transfer_syntaxes_lists_the_fastest_first() -> None:
    syntaxes = available_transfer_syntaxes()
    for uid in (ExplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless, JPEGLSLossless, JPEG2000Lossless,
                JPEGBaseline8Bit, JPEGLosslessSV1, "1.2.840.10008.1.2.4.201"):
        assert uid in syntaxes, uid
    assert syntaxes[JPEGLSLossless].startswith("pyjpegls")
    assert syntaxes[RLELossless].startswith("pylibjpeg")
    assert syntaxes[ExplicitVRLittleEndian] == "loadstone (numpy)"


def test_plugin_details_show_the_syntaxes() -> None:
    wado = next(info for info in loadstone.plugins(details=True) if "dicomfile" in info.schemes)
    assert wado.status == "loaded"
    assert "JPEG-LS" in wado.details["transfer syntaxes"]
    assert "decode pool" in wado.details


# -- caps ------------------------------------------------------------------------------
def test_pixel_cap_refuses_before_decoding(testdata: Callable[[str], str]) -> None:
    config.configure(max_pixel_bytes=1000)
    description = PixelDescription(rows=4096, columns=4096, number_of_frames=1000)
    with pytest.raises(loadstone.ResourceLimitError, match="max_pixel_bytes"):
        decode_frame(b"", description, JPEG2000Lossless, image_id="x")
    ds = pydicom.dcmread(testdata("CT_small.dcm"))
    with pytest.raises(loadstone.ResourceLimitError) as info:
        image_from_dataset("capped", ds, 1)
    assert info.value.image_id == "capped"
