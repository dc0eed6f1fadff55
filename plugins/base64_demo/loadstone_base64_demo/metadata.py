"""Metadata provider: the DICOM-like modules for every ``example:`` image id.

Answers use the module names of Cornerstone and the snake_case keys of
DESIGN.md, with numbers as numbers and lists as lists.  Each call builds a
fresh dict, so a caller that edits an answer cannot change the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from loadstone import InvalidImageError

from ._ids import is_example_id, parse_image_id
from ._series import PATIENT_ID, PATIENT_NAME, SeriesSpec
from ._uids import demo_uid

__all__ = ["MODULES", "metadata_provider", "sop_instance_uid"]

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"


def sop_instance_uid(spec: SeriesSpec, index: int) -> str:
    """The SOP Instance UID of slice ``index`` of ``spec``."""
    return demo_uid(f"{spec.name}/instance/{index}")


def _image_plane(spec: SeriesSpec, index: int) -> dict[str, Any]:
    geometry = spec.geometry
    if geometry is None:
        # A secondary capture has no place in patient space; say so rather than invent one.
        return {
            "frame_of_reference_uid": None,
            "rows": spec.rows,
            "columns": spec.columns,
            "image_orientation_patient": None,
            "row_cosines": None,
            "column_cosines": None,
            "image_position_patient": None,
            "slice_thickness": None,
            "spacing_between_slices": None,
            "slice_location": None,
            "pixel_spacing": None,
            "row_pixel_spacing": None,
            "column_pixel_spacing": None,
        }
    orientation = geometry.orientation
    return {
        "frame_of_reference_uid": demo_uid(geometry.frame_of_reference),
        "rows": spec.rows,
        "columns": spec.columns,
        "image_orientation_patient": orientation,
        "row_cosines": orientation[:3],
        "column_cosines": orientation[3:],
        "image_position_patient": geometry.position(index),
        "slice_thickness": geometry.slice_thickness,
        "spacing_between_slices": geometry.spacing_between_slices,
        "slice_location": geometry.slice_location(index),
        "pixel_spacing": list(geometry.pixel_spacing),
        # As in Cornerstone: row spacing is PixelSpacing[0] (between rows), column spacing [1].
        "row_pixel_spacing": geometry.pixel_spacing[0],
        "column_pixel_spacing": geometry.pixel_spacing[1],
    }


def _image_pixel(spec: SeriesSpec, index: int) -> dict[str, Any]:
    dtype = np.dtype(spec.dtype)
    return {
        "samples_per_pixel": spec.samples_per_pixel,
        "photometric_interpretation": spec.photometric_interpretation,
        "rows": spec.rows,
        "columns": spec.columns,
        "bits_allocated": dtype.itemsize * 8,
        "bits_stored": spec.bits_stored,
        "high_bit": spec.bits_stored - 1,
        "pixel_representation": 1 if dtype.kind == "i" else 0,
        "planar_configuration": 0 if spec.samples_per_pixel > 1 else None,
        "pixel_padding_value": spec.pixel_padding_value,
    }


def _general_series(spec: SeriesSpec, index: int) -> dict[str, Any]:
    return {
        "modality": spec.modality,
        "series_instance_uid": demo_uid(f"{spec.name}/series"),
        "series_number": spec.series_number,
        "series_description": spec.description,
        "study_instance_uid": demo_uid(spec.study.name),
        "series_date": spec.study.date,
        "series_time": spec.study.time,
    }


def _general_study(spec: SeriesSpec, index: int) -> dict[str, Any]:
    return {
        "study_instance_uid": demo_uid(spec.study.name),
        "study_date": spec.study.date,
        "study_time": spec.study.time,
        "study_description": spec.study.description,
        "study_id": spec.study.study_id,
        "accession_number": spec.study.accession_number,
    }


def _general_image(spec: SeriesSpec, index: int) -> dict[str, Any]:
    return {
        "instance_number": index + 1,
        "sop_instance_uid": sop_instance_uid(spec, index),
        "image_type": list(spec.image_type),
        "lossy_image_compression": "00",
    }


def _patient(spec: SeriesSpec, index: int) -> dict[str, Any]:
    return {"patient_name": PATIENT_NAME, "patient_id": PATIENT_ID, "patient_sex": "O"}


def _voi_lut(spec: SeriesSpec, index: int) -> dict[str, Any]:
    return {
        "window_center": [w.center for w in spec.windows],
        "window_width": [w.width for w in spec.windows],
        "voi_lut_function": "LINEAR",
        "explanation": [w.explanation for w in spec.windows],
    }


def _modality_lut(spec: SeriesSpec, index: int) -> dict[str, Any]:
    return {
        "rescale_slope": spec.slope,
        "rescale_intercept": spec.intercept,
        "rescale_type": spec.rescale_type,
    }


def _sop_common(spec: SeriesSpec, index: int) -> dict[str, Any]:
    return {"sop_class_uid": spec.sop_class_uid, "sop_instance_uid": sop_instance_uid(spec, index)}


def _multiframe(spec: SeriesSpec, index: int) -> dict[str, Any]:
    return {"number_of_frames": 1}


def _transfer_syntax(spec: SeriesSpec, index: int) -> dict[str, Any]:
    return {"transfer_syntax_uid": EXPLICIT_VR_LITTLE_ENDIAN}


#: Module name -> builder of its answer for (series, slice index).
MODULES: dict[str, Callable[[SeriesSpec, int], dict[str, Any]]] = {
    "imagePlaneModule": _image_plane,
    "imagePixelModule": _image_pixel,
    "generalSeriesModule": _general_series,
    "generalStudyModule": _general_study,
    "generalImageModule": _general_image,
    "patientModule": _patient,
    "voiLutModule": _voi_lut,
    "modalityLutModule": _modality_lut,
    "sopCommonModule": _sop_common,
    "multiframeModule": _multiframe,
    "transferSyntax": _transfer_syntax,
}


def metadata_provider(module: str, image_id: str) -> dict[str, Any] | None:
    """Answer ``module`` for a demo image id; None for other ids, bad ids and unknown modules.

    Registered at priority 0 through the plugin's hook; never raises for any
    input, so it cannot break a registry that asks every provider in turn.
    """
    build = MODULES.get(module) if isinstance(module, str) else None
    if build is None or not is_example_id(image_id):
        return None
    try:
        spec, index = parse_image_id(image_id)
    except InvalidImageError:
        return None
    return build(spec, index)
