"""Old home of the metadata modules: built in :mod:`loadstone_wado.dicom.modules`, served by
:mod:`loadstone_wado.schemes.metadata`."""

from __future__ import annotations

from .dicom.modules import MODULES, modules_from_dataset, modules_from_dicom_json
from .schemes.metadata import dataset_metadata_provider

__all__ = ["MODULES", "modules_from_dataset", "modules_from_dicom_json", "dataset_metadata_provider"]
