"""DICOM knowledge shared by every other layer of the plugin; no I/O, no decoding.

* :mod:`.attributes` — one read-only attribute view over a pydicom Dataset or
  DICOM JSON (:class:`Attributes`);
* :mod:`.description` — :class:`PixelDescription`: what a frame's bytes mean;
* :mod:`.modules` — the metadata modules (``imagePlaneModule``, …);
* :mod:`.syntaxes` — Transfer Syntax UIDs and their names;
* :mod:`.provenance` — what a parsed Dataset remembers of its source.
"""

from __future__ import annotations

from .attributes import (
    Attributes,
    DatasetAttributes,
    FileAttributes,
    JsonAttributes,
    frame_item,
    frame_value,
    json_tag,
)
from .description import PHOTOMETRIC_INTERPRETATIONS, PaletteLUT, PixelDescription
from .modules import MODULES, modules_from_dataset, modules_from_dicom_json
from .syntaxes import NATIVE_SYNTAXES, is_native, syntax_name

__all__ = [
    "Attributes",
    "DatasetAttributes",
    "FileAttributes",
    "JsonAttributes",
    "frame_item",
    "frame_value",
    "json_tag",
    "PixelDescription",
    "PaletteLUT",
    "PHOTOMETRIC_INTERPRETATIONS",
    "MODULES",
    "modules_from_dataset",
    "modules_from_dicom_json",
    "NATIVE_SYNTAXES",
    "is_native",
    "syntax_name",
]
