"""Metadata modules from Part 10 headers and DICOM JSON, and the dataset provider."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
import synthetic
from pydicom.dataset import Dataset

import loadstone
from loadstone_wado.metadata import (
    MODULES,
    dataset_metadata_provider,
    modules_from_dataset,
    modules_from_dicom_json,
)
from loadstone_wado.part10 import dataset_cache, read_part10

DESIGN_MODULES = (
    "imagePlaneModule", "imagePixelModule", "generalSeriesModule", "generalStudyModule",
    "generalImageModule", "patientModule", "voiLutModule", "modalityLutModule", "sopCommonModule",
    "multiframeModule", "transferSyntax",
)


def _json(ds: Dataset) -> dict[str, Any]:
    header = copy.deepcopy(ds)
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in header:
            delattr(header, keyword)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return header.to_json_dict(bulk_data_threshold=1 << 30)


def _plain_numbers(value: Any) -> None:
    """Numbers are int/float (never pydicom's DSfloat/IS or strings), recursively."""
    if isinstance(value, dict):
        for item in value.values():
            _plain_numbers(item)
    elif isinstance(value, list):
        for item in value:
            _plain_numbers(item)
    else:
        assert value is None or type(value) in (int, float, str, bool), (type(value), value)


def test_every_design_module_is_answered(testdata: Callable[[str], str]) -> None:
    ds = pydicom.dcmread(testdata("CT_small.dcm"))
    assert set(DESIGN_MODULES) <= set(MODULES)
    for module in DESIGN_MODULES:
        answer = modules_from_dataset(module, ds, 1)
        assert isinstance(answer, dict) and answer, module
        assert all(key == key.lower() for key in answer), f"{module}: keys are snake_case"
        _plain_numbers(answer)
    assert modules_from_dataset("noSuchModule", ds, 1) is None


def test_ct_values(testdata: Callable[[str], str]) -> None:
    ds = pydicom.dcmread(testdata("CT_small.dcm"))
    plane = modules_from_dataset("imagePlaneModule", ds)
    assert plane is not None
    assert plane["image_position_patient"] == [float(v) for v in ds.ImagePositionPatient]
    assert plane["image_orientation_patient"] == [float(v) for v in ds.ImageOrientationPatient]
    assert plane["row_cosines"] == plane["image_orientation_patient"][:3]
    assert plane["pixel_spacing"] == [float(v) for v in ds.PixelSpacing]
    assert plane["row_pixel_spacing"] == float(ds.PixelSpacing[0])
    assert plane["frame_of_reference_uid"] == ds.FrameOfReferenceUID
    assert plane["slice_thickness"] == float(ds.SliceThickness)
    assert (plane["rows"], plane["columns"]) == (128, 128)
    pixel = modules_from_dataset("imagePixelModule", ds)
    assert pixel is not None
    assert (pixel["bits_allocated"], pixel["bits_stored"], pixel["pixel_representation"]) == (16, 16, 1)
    assert pixel["photometric_interpretation"] == "MONOCHROME2"
    modality = modules_from_dataset("modalityLutModule", ds)
    assert modality is not None and modality["rescale_intercept"] == float(ds.RescaleIntercept)
    series = modules_from_dataset("generalSeriesModule", ds)
    assert series is not None and series["modality"] == "CT"
    assert series["series_number"] == int(ds.SeriesNumber)
    patient = modules_from_dataset("patientModule", ds)
    assert patient is not None and patient["patient_name"] == str(ds.PatientName)
    syntax = modules_from_dataset("transferSyntax", ds)
    assert syntax == {"transfer_syntax_uid": "1.2.840.10008.1.2.1"}
    sop = modules_from_dataset("sopCommonModule", ds)
    assert sop is not None and sop["sop_instance_uid"] == ds.SOPInstanceUID
    frames = modules_from_dataset("multiframeModule", ds)
    assert frames is not None and frames["number_of_frames"] == 1


def test_voi_lut_lists_every_window(testdata: Callable[[str], str]) -> None:
    ds = pydicom.dcmread(testdata("MR_small.dcm"))
    ds.WindowCenter, ds.WindowWidth = [40, 300], [400, 1500]
    voi = modules_from_dataset("voiLutModule", ds)
    assert voi is not None
    assert voi["window_center"] == [40.0, 300.0] and voi["window_width"] == [400.0, 1500.0]
    assert voi["voi_lut_function"] == "LINEAR"


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "examples_ybr_color.dcm", "rtdose.dcm",
                                  "liver_1frame.dcm", "examples_palette.dcm"])
def test_dicom_json_answers_like_the_dataset(testdata: Callable[[str], str], name: str) -> None:
    ds = pydicom.dcmread(testdata(name))
    attrs = _json(ds)
    for module in DESIGN_MODULES:
        if module == "transferSyntax":
            assert modules_from_dicom_json(module, attrs, 1) is None  # DICOM JSON carries no file meta
            continue
        assert modules_from_dicom_json(module, attrs, 1) == modules_from_dataset(module, ds, 1), module


def _enhanced(frames: int = 3) -> Dataset:
    """A multi-frame CT with per-frame positions and rescale, shared spacing and window."""
    ds = synthetic.ct_dataset(0, 8, 8)
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
                    "RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
        delattr(ds, keyword)
    ds.NumberOfFrames = frames
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.6]
    measures.SliceThickness = 2.0
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    voi = Dataset()
    voi.WindowCenter, voi.WindowWidth = 50, 350
    shared.PixelMeasuresSequence = [measures]
    shared.PlaneOrientationSequence = [orientation]
    shared.FrameVOILUTSequence = [voi]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for index in range(frames):
        item = Dataset()
        position = Dataset()
        position.ImagePositionPatient = [0, 0, 2.0 * index]
        transform = Dataset()
        transform.RescaleSlope, transform.RescaleIntercept = 1, -1000 - index
        item.PlanePositionSequence = [position]
        item.PixelValueTransformationSequence = [transform]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    pixels = bytes(ds.PixelData) * frames
    ds.PixelData = pixels
    return ds


def test_per_frame_functional_groups(tmp_path: Path) -> None:
    ds = _enhanced()
    for frame in (1, 2, 3):
        plane = modules_from_dataset("imagePlaneModule", ds, frame)
        assert plane is not None
        assert plane["image_position_patient"] == [0.0, 0.0, 2.0 * (frame - 1)]
        assert plane["image_orientation_patient"] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        assert plane["pixel_spacing"] == [0.5, 0.6] and plane["slice_thickness"] == 2.0
        modality = modules_from_dataset("modalityLutModule", ds, frame)
        assert modality is not None and modality["rescale_intercept"] == -1000.0 - (frame - 1)
        voi = modules_from_dataset("voiLutModule", ds, frame)
        assert voi is not None and voi["window_center"] == [50.0]
    attrs = _json(ds)
    from_json = modules_from_dicom_json("imagePlaneModule", attrs, 2)
    assert from_json == modules_from_dataset("imagePlaneModule", ds, 2)

    path = tmp_path / "enhanced.dcm"
    ds.save_as(path, enforce_file_format=True)
    image = loadstone.load_image(f"dicomfile:{path}?frame=3").result(30)
    assert image.intercept == -1002.0 and image.window_center == 50.0
    assert (image.row_pixel_spacing, image.column_pixel_spacing) == (0.5, 0.6)
    ids = loadstone.series_image_ids(f"dicomfile:{tmp_path}")
    assert ids == [f"dicomfile:{path}?frame={n}" for n in (1, 2, 3)]
    z = [loadstone.metadata.get("imagePlaneModule", i)["image_position_patient"][2] for i in ids]
    assert z == [0.0, 2.0, 4.0]


def test_provider_for_dicomfile_ids(testdata: Callable[[str], str]) -> None:
    image_id = f"dicomfile:{testdata('rtdose.dcm')}?frame=4"
    # Before any load: the header is read (without pixels) and remembered.
    frames = loadstone.metadata.get("multiframeModule", image_id)
    assert frames["number_of_frames"] == 15 and frames["frame_number"] == 4
    loadstone.load_image(image_id).result(30)
    assert loadstone.metadata.get("transferSyntax", image_id) == {"transfer_syntax_uid": "1.2.840.10008.1.2"}
    assert dataset_metadata_provider("imagePlaneModule", "dicomfile:/no/such.dcm") is None
    assert dataset_metadata_provider("imagePlaneModule", "example://ct/1") is None
    assert dataset_metadata_provider("unknownModule", image_id) is None


def test_provider_for_wadouri_ids_reads_only_the_cache(testdata: Callable[[str], str]) -> None:
    image_id = "wadouri:http://server/wado?requestType=WADO&objectUID=1.2.3&frame=2"
    assert dataset_metadata_provider("imagePixelModule", image_id) is None  # never fetches
    dataset_cache.put("wadouri:http://server/wado?requestType=WADO&objectUID=1.2.3",
                      read_part10(testdata("SC_rgb_rle_2frame.dcm")))
    pixel = dataset_metadata_provider("imagePixelModule", image_id)
    assert pixel is not None and pixel["samples_per_pixel"] == 3
    assert dataset_metadata_provider("multiframeModule", image_id)["frame_number"] == 2  # type: ignore[index]
