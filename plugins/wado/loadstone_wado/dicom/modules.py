"""Metadata modules (DESIGN.md, after Cornerstone) from a Part 10 header or DICOM JSON.

Every module is written once against :class:`~.attributes.Attributes`, so
:func:`modules_from_dataset` (``dicomfile:``, ``wadouri:``) and
:func:`modules_from_dicom_json` (``wadors:``) answer identically.  Keys are
snake_case, numbers are numbers (DS/IS become float/int), multi-valued
attributes are lists, absent attributes are None.  For enhanced multi-frame
objects the geometry, rescale and window of frame N come from its Per-Frame
Functional Groups, else the Shared ones, else the top level.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydicom.dataset import Dataset

from loadstone.errors import LoadstoneError

from .attributes import Attributes, FileAttributes, JsonAttributes, frame_item, frame_value
from .description import PaletteLUT

__all__ = [
    "MODULES",
    "modules_from_dataset",
    "modules_from_dicom_json",
]

def _list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return list(value) if isinstance(value, list) else [value]


def _numbers(value: Any) -> list[float] | None:
    values = _list(value)
    if values is None:
        return None
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return None


def _number(value: Any) -> float | None:
    numbers = _numbers(value)
    return numbers[0] if numbers else None


def _integer(value: Any) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        return int(number) if number.is_integer() else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return "\\".join(str(v) for v in value)
    return str(value)


def _image_plane(src: Attributes, frame: int) -> dict[str, Any]:
    orientation = _numbers(frame_value(src, frame, "PlaneOrientationSequence", "ImageOrientationPatient"))
    if orientation is not None and len(orientation) != 6:
        orientation = None
    position = _numbers(frame_value(src, frame, "PlanePositionSequence", "ImagePositionPatient"))
    if position is not None and len(position) != 3:
        position = None
    spacing = _numbers(frame_value(src, frame, "PixelMeasuresSequence", "PixelSpacing"))
    if spacing is None or len(spacing) != 2:
        spacing = _numbers(src.get("ImagerPixelSpacing"))
        if spacing is not None and len(spacing) != 2:
            spacing = None
    return {
        "frame_of_reference_uid": _text(src.get("FrameOfReferenceUID")),
        "rows": _integer(src.get("Rows")),
        "columns": _integer(src.get("Columns")),
        "image_orientation_patient": orientation,
        "row_cosines": orientation[:3] if orientation else None,
        "column_cosines": orientation[3:] if orientation else None,
        "image_position_patient": position,
        "slice_thickness": _number(frame_value(src, frame, "PixelMeasuresSequence", "SliceThickness")),
        "spacing_between_slices": _number(
            frame_value(src, frame, "PixelMeasuresSequence", "SpacingBetweenSlices")),
        "slice_location": _number(src.get("SliceLocation")),
        "pixel_spacing": spacing,
        # As in Cornerstone: row spacing is PixelSpacing[0] (between rows), column spacing [1].
        "row_pixel_spacing": spacing[0] if spacing else None,
        "column_pixel_spacing": spacing[1] if spacing else None,
    }


_PALETTE_DATA_KEYS = ("red_palette_color_lookup_table_data", "green_palette_color_lookup_table_data",
                      "blue_palette_color_lookup_table_data")


def _palette_data(src: Attributes) -> dict[str, Any]:
    """The three Palette Color LUTs as lists of their entries' values, as Cornerstone fills them.

    Segmented tables are expanded, 8-bit entries in 16-bit words unpacked
    (pydicom's ``apply_color_lut`` reads them).  None when the object has no
    palette, or when DICOM JSON carries the data only as bulk data (a
    ``wadors:`` load fetches it; the answer has the arrays afterwards).
    """
    palette_ds = src.palette_dataset()
    if palette_ds is None:
        return dict.fromkeys(_PALETTE_DATA_KEYS)
    try:
        table = PaletteLUT.from_dataset(palette_ds).table
    except LoadstoneError:  # an unusable table: the load says why
        return dict.fromkeys(_PALETTE_DATA_KEYS)
    return {key: table[:, channel].tolist() for channel, key in enumerate(_PALETTE_DATA_KEYS)}


def _image_pixel(src: Attributes, frame: int) -> dict[str, Any]:
    samples = _integer(src.get("SamplesPerPixel")) or 1
    return {
        "samples_per_pixel": samples,
        "photometric_interpretation": _text(src.get("PhotometricInterpretation")),
        "rows": _integer(src.get("Rows")),
        "columns": _integer(src.get("Columns")),
        "bits_allocated": _integer(src.get("BitsAllocated")),
        "bits_stored": _integer(src.get("BitsStored")),
        "high_bit": _integer(src.get("HighBit")),
        "pixel_representation": _integer(src.get("PixelRepresentation")),
        "planar_configuration": _integer(src.get("PlanarConfiguration")) if samples > 1 else None,
        "pixel_aspect_ratio": _list(src.get("PixelAspectRatio")),
        "smallest_pixel_value": _integer(src.get("SmallestImagePixelValue")),
        "largest_pixel_value": _integer(src.get("LargestImagePixelValue")),
        "pixel_padding_value": _integer(src.get("PixelPaddingValue")),
        "red_palette_color_lookup_table_descriptor": _list(src.get("RedPaletteColorLookupTableDescriptor")),
        "green_palette_color_lookup_table_descriptor":
            _list(src.get("GreenPaletteColorLookupTableDescriptor")),
        "blue_palette_color_lookup_table_descriptor": _list(src.get("BluePaletteColorLookupTableDescriptor")),
        **_palette_data(src),
    }


def _general_series(src: Attributes, frame: int) -> dict[str, Any]:
    return {
        "modality": _text(src.get("Modality")),
        "series_instance_uid": _text(src.get("SeriesInstanceUID")),
        "series_number": _integer(src.get("SeriesNumber")),
        "series_description": _text(src.get("SeriesDescription")),
        "study_instance_uid": _text(src.get("StudyInstanceUID")),
        "series_date": _text(src.get("SeriesDate")),
        "series_time": _text(src.get("SeriesTime")),
        "body_part_examined": _text(src.get("BodyPartExamined")),
        "laterality": _text(src.get("Laterality")),
        "protocol_name": _text(src.get("ProtocolName")),
        "patient_position": _text(src.get("PatientPosition")),
    }


def _general_study(src: Attributes, frame: int) -> dict[str, Any]:
    return {
        "study_instance_uid": _text(src.get("StudyInstanceUID")),
        "study_date": _text(src.get("StudyDate")),
        "study_time": _text(src.get("StudyTime")),
        "study_description": _text(src.get("StudyDescription")),
        "study_id": _text(src.get("StudyID")),
        "accession_number": _text(src.get("AccessionNumber")),
        "referring_physician_name": _text(src.get("ReferringPhysicianName")),
    }


def _general_image(src: Attributes, frame: int) -> dict[str, Any]:
    return {
        "sop_instance_uid": _text(src.get("SOPInstanceUID")),
        "instance_number": _integer(src.get("InstanceNumber")),
        "image_type": _list(src.get("ImageType")),
        "lossy_image_compression": _text(src.get("LossyImageCompression")),
        "lossy_image_compression_ratio": _numbers(src.get("LossyImageCompressionRatio")),
        "lossy_image_compression_method": _list(src.get("LossyImageCompressionMethod")),
        "acquisition_date": _text(src.get("AcquisitionDate")),
        "acquisition_time": _text(src.get("AcquisitionTime")),
        "content_date": _text(src.get("ContentDate")),
        "content_time": _text(src.get("ContentTime")),
        "image_comments": _text(src.get("ImageComments")),
    }


def _patient(src: Attributes, frame: int) -> dict[str, Any]:
    return {
        "patient_name": _text(src.get("PatientName")),
        "patient_id": _text(src.get("PatientID")),
        "patient_birth_date": _text(src.get("PatientBirthDate")),
        "patient_sex": _text(src.get("PatientSex")),
        "patient_age": _text(src.get("PatientAge")),
        "patient_weight": _number(src.get("PatientWeight")),
    }


def _voi_lut(src: Attributes, frame: int) -> dict[str, Any]:
    item = frame_item(src, frame, "FrameVOILUTSequence")
    source = item if item is not None and item.get("WindowCenter") is not None else src
    function = _text(source.get("VOILUTFunction"))
    return {
        "window_center": _numbers(source.get("WindowCenter")),
        "window_width": _numbers(source.get("WindowWidth")),
        "voi_lut_function": function.upper() if function else "LINEAR",
        "window_center_width_explanation": _list(source.get("WindowCenterWidthExplanation")),
        "voi_lut_sequence": [
            {"lut_descriptor": _list(lut.get("LUTDescriptor")),
             "lut_explanation": _text(lut.get("LUTExplanation"))}
            for lut in src.sequence("VOILUTSequence")
        ] or None,
    }


def _modality_lut(src: Attributes, frame: int) -> dict[str, Any]:
    item = frame_item(src, frame, "PixelValueTransformationSequence")
    source = item if item is not None and item.get("RescaleSlope") is not None else src
    return {
        "rescale_intercept": _number(source.get("RescaleIntercept")),
        "rescale_slope": _number(source.get("RescaleSlope")),
        "rescale_type": _text(source.get("RescaleType")),
        "modality_lut_sequence": [
            {"lut_descriptor": _list(lut.get("LUTDescriptor")),
             "modality_lut_type": _text(lut.get("ModalityLUTType"))}
            for lut in src.sequence("ModalityLUTSequence")
        ] or None,
    }


def _sop_common(src: Attributes, frame: int) -> dict[str, Any]:
    return {
        "sop_class_uid": _text(src.get("SOPClassUID")),
        "sop_instance_uid": _text(src.get("SOPInstanceUID")),
        "specific_character_set": _list(src.get("SpecificCharacterSet")),
    }


def _multiframe(src: Attributes, frame: int) -> dict[str, Any]:
    pointer = src.get("FrameIncrementPointer")
    pointers = [f"{int(p):08X}" if isinstance(p, int) else str(p) for p in (_list(pointer) or [])]
    return {
        "number_of_frames": _integer(src.get("NumberOfFrames")) or 1,
        "frame_number": frame,
        "frame_increment_pointer": pointers or None,
        "frame_time": _number(src.get("FrameTime")),
        "frame_time_vector": _numbers(src.get("FrameTimeVector")),
        "has_per_frame_functional_groups": bool(src.sequence("PerFrameFunctionalGroupsSequence")),
    }


def _transfer_syntax(src: Attributes, frame: int) -> dict[str, Any] | None:
    uid = _text(src.get("TransferSyntaxUID"))
    return {"transfer_syntax_uid": uid} if uid else None


#: Module name -> builder of its answer for (attributes, 1-based frame).
MODULES: dict[str, Callable[[Attributes, int], dict[str, Any] | None]] = {
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


def modules_from_dataset(module: str, ds: Dataset, frame: int = 1) -> dict[str, Any] | None:
    """Answer ``module`` for frame ``frame`` (1-based) of a pydicom dataset; None for unknown modules."""
    build = MODULES.get(module)
    if build is None:
        return None
    return build(FileAttributes(ds), frame)


def modules_from_dicom_json(module: str, attrs: Mapping[str, Any], frame: int = 1) -> dict[str, Any] | None:
    """Answer ``module`` for frame ``frame`` of a DICOM JSON object; None for unknown modules.

    ``transferSyntax`` is None unless the JSON carries (0002,0010), which
    DICOMweb servers usually leave out.
    """
    build = MODULES.get(module)
    if build is None:
        return None
    return build(JsonAttributes(attrs), frame)
