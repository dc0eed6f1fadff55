"""End to end on real series: the demo CT and MR, the CLI, and (when installed) dicomfile and wadors."""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loadstone
import loadstone_mpr

from .helpers import has_scheme

CT = "example://ct"  # 64 axial slices of 128x128 int16, 2.5 mm pixels, 3 mm apart, z up
MR = "example://mr"  # 32 sagittal slices of 128x112 uint16, 1.8 mm pixels, 4.5 mm apart

needs_demo = pytest.mark.skipif(not has_scheme("example"), reason="loadstone-base64-demo missing")
pytestmark = needs_demo


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _slices(series_id: str) -> np.ndarray:
    ids = loadstone.series_image_ids(series_id)
    return np.stack([load.result(60).pixel_data for load in loadstone.load_images(ids)])


def test_cli_renders_a_sagittal_plane_of_the_demo_ct(tmp_path: Path) -> None:
    cli = pytest.importorskip("loadstone.cli")
    out = tmp_path / "sagittal.png"
    assert cli.main(["render", "mpr:sagittal;series=example://ct", "-o", str(out)]) == 0
    data = out.read_bytes()
    # 128 columns along y; 189 mm of z at 2.5 mm: 77 rows.
    assert _png_size(data) == (128, 77)
    zlib.decompress(data[data.index(b"IDAT") + 4:])  # a real deflate stream, not an empty file


def test_cli_fetches_a_whole_stack(tmp_path: Path) -> None:
    cli = pytest.importorskip("loadstone.cli")
    assert cli.main(["fetch", "--series", "mpr:coronal;series=example://ct", "-o", str(tmp_path), "-q"]) == 0
    assert len(list(tmp_path.glob("*.npy"))) == 128
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest


def test_demo_ct_planes_are_its_slices() -> None:
    volume = _slices(CT)
    for k in (0, 17, 63):
        image = loadstone.load_image(f"mpr:axial;index={k};series={CT}").result(60)
        np.testing.assert_array_equal(image.pixel_data, volume[k])
    for i in (0, 40, 127):  # sagittal at the source spacing: rows down z (3 mm), columns along y
        image = loadstone.load_image(f"mpr:sagittal;index={i};spacing=3,2.5;series={CT}").result(60)
        np.testing.assert_array_equal(image.pixel_data, volume[::-1, :, 127 - i])


def test_demo_ct_sagittal_is_a_full_image() -> None:
    image_id = f"mpr:sagittal;series={CT}"
    image = loadstone.load_image(image_id).result(60)
    source = loadstone.load_image("example://ct/0").result(60)
    assert (image.rows, image.columns) == (77, 128)
    assert (image.row_pixel_spacing, image.column_pixel_spacing) == (2.5, 2.5)
    assert (image.slope, image.intercept) == (source.slope, source.intercept) == (1.0, -1024.0)
    assert (image.window_center, image.window_width) == (source.window_center, source.window_width)
    plane = loadstone.metadata.get("imagePlaneModule", image_id)
    assert plane["image_orientation_patient"] == [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    assert plane["frame_of_reference_uid"] == loadstone.metadata.get(
        "imagePlaneModule", "example://ct/0")["frame_of_reference_uid"]
    # The middle sagittal plane: x = 1.25 mm; the top row at the head end of the 189 mm of slices.
    assert plane["image_position_patient"] == [1.25, -158.75, -60.5]
    assert loadstone.metadata.get("voiLutModule", image_id)["window_center"][0] == 40.0
    assert loadstone.metadata.get("modalityLutModule", image_id)["rescale_intercept"] == -1024.0
    assert loadstone.metadata.get("generalStudyModule", image_id) == loadstone.metadata.get(
        "generalStudyModule", "example://ct/0")
    # HU are right: the middle of the phantom is soft tissue, not air or padding.
    hu = image.modality_pixel_data()
    assert -200 < float(np.median(hu[20:60, 40:90])) < 300


def test_demo_mr_sagittal_planes_are_its_slices() -> None:
    volume = _slices(MR)
    for k in (0, 31):
        image = loadstone.load_image(f"mpr:sagittal;index={k};series={MR}").result(60)
        assert image.pixel_data.dtype == np.uint16
        np.testing.assert_array_equal(image.pixel_data, volume[k])


def test_demo_volume() -> None:
    array, affine = loadstone_mpr.get_volume(CT)
    assert array.shape == (64, 128, 128) and array.dtype == np.int16
    np.testing.assert_allclose(affine[:3, 3], [-158.75, -158.75, -250.0])
    np.testing.assert_allclose(np.diag(affine)[:3], [2.5, 2.5, 3.0])


def test_demo_stack_through_the_pool() -> None:
    ids = loadstone.series_image_ids(f"mpr:sagittal;series={CT}")
    assert len(ids) == 128
    images = [load.result(60) for load in loadstone.load_images(ids)]
    assert {(image.rows, image.columns) for image in images} == {(77, 128)}


def test_oblique_slab_of_the_demo_ct() -> None:
    image_id = ("mpr:oblique;normal=0.3,0.2,0.93;point=0,0,-150;up=0,-1,0;size=256x256;spacing=0.8;"
                f"slab=10;mode=mip;interp=linear;series={CT}")
    image = loadstone.load_image(image_id).result(60)
    assert (image.rows, image.columns) == (256, 256)
    plane = loadstone.metadata.get("imagePlaneModule", image_id)
    assert plane["slice_thickness"] == 10.0
    # The centre pixel is the point asked for.
    origin = np.array(plane["image_position_patient"])
    centre = origin + 127.5 * 0.8 * np.array(plane["row_cosines"]) + 127.5 * 0.8 * np.array(
        plane["column_cosines"])
    np.testing.assert_allclose(centre, [0.0, 0.0, -150.0], atol=1e-9)


# -- other schemes, when their plugins are installed ------------------------------------
def _write_dicom_series(folder: Path, volume: np.ndarray, spacing: float) -> None:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k, pixels in enumerate(volume):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"{k:03d}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality = "CT"
        ds.PatientName, ds.PatientID = "MPR^Test", "MPR1"
        ds.InstanceNumber = len(volume) - k  # listed in reverse: the plugin must sort
        ds.ImagePositionPatient = [-10.0, -20.0, 5.0 + k * spacing]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.8, 0.6]
        ds.SliceThickness = spacing
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelData = pixels.astype("<i2").tobytes()
        ds.save_as(str(folder / f"{k:03d}.dcm"), enforce_file_format=True)
    del pydicom


@pytest.mark.skipif(not has_scheme("dicomfile"), reason="the dicomfile scheme is not installed")
def test_mpr_of_a_dicomfile_series(tmp_path: Path) -> None:
    volume = np.random.default_rng(0).integers(-1000, 2000, size=(12, 20, 24), dtype=np.int16)
    _write_dicom_series(tmp_path, volume, spacing=1.5)
    series_id = f"dicomfile:{tmp_path}"
    ids = loadstone.series_image_ids(series_id)
    assert len(ids) == 12
    built = loadstone_mpr.get_volume(series_id)
    np.testing.assert_array_equal(built.array, volume)
    np.testing.assert_allclose(built.affine[:3, 3], [-10.0, -20.0, 5.0])
    image = loadstone.load_image(f"mpr:coronal;index=7;spacing=1.5,0.6;series={series_id}").result(60)
    np.testing.assert_array_equal(image.pixel_data, volume[::-1, 7, :])
    assert image.intercept == -1024.0


def _orthanc_module() -> Any:
    """tests/wado/orthanc.py (the WADO tests' Orthanc runner), loaded by path; None if absent."""
    path = Path(__file__).resolve().parents[1] / "wado" / "orthanc.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("loadstone_mpr_tests_orthanc", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.integration
@pytest.mark.skipif(not has_scheme("wadors"), reason="the wadors scheme is not installed")
def test_mpr_of_a_wadors_series_from_orthanc(tmp_path: Path) -> None:
    orthanc = _orthanc_module()
    if orthanc is None or orthanc.orthanc_missing() is not None:
        pytest.skip("Orthanc (and tests/wado/orthanc.py) are needed")
    volume = np.random.default_rng(1).integers(-1000, 2000, size=(10, 16, 18), dtype=np.int16)
    folder = tmp_path / "series"
    folder.mkdir()
    _write_dicom_series(folder, volume, spacing=2.0)
    with orthanc.OrthancServer(tmp_path / "orthanc") as server:
        answers = [server.upload(path.read_bytes()) for path in sorted(folder.glob("*.dcm"))]
        first = pydicom_read(folder / "000.dcm")
        assert len({answer["ParentSeries"] for answer in answers}) == 1
        series_id = server.wadors_series(first.StudyInstanceUID, first.SeriesInstanceUID)
        built = loadstone_mpr.get_volume(series_id)
        np.testing.assert_array_equal(built.array, volume)
        np.testing.assert_allclose(built.affine[:3, 3], [-10.0, -20.0, 5.0])
        image_id = f"mpr:sagittal;index=4;spacing=2,0.8;series={series_id}"
        image = loadstone.load_image(image_id).result(60)
        np.testing.assert_array_equal(image.pixel_data, volume[::-1, :, 17 - 4])
        assert loadstone.metadata.get("imagePlaneModule", image_id)["rows"] == 10
        loadstone_mpr.clear()
        loadstone.cache.purge()


def pydicom_read(path: Path) -> Any:
    """Read a DICOM file with pydicom (skips the test without it)."""
    pydicom = pytest.importorskip("pydicom")
    return pydicom.dcmread(str(path))
