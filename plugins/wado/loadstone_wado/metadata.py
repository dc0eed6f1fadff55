"""Metadata modules (DESIGN.md, after Cornerstone) from a Part 10 header or DICOM JSON.

The modules are built in :mod:`loadstone_wado.dicom.modules`; this module
adds the provider for ``dicomfile:``, ``wadouri:`` and ``dicomweb:`` ids.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from .dicom.modules import MODULES, modules_from_dataset, modules_from_dicom_json

__all__ = [
    "MODULES",
    "modules_from_dataset",
    "modules_from_dicom_json",
    "dataset_metadata_provider",
]

_log = logging.getLogger("loadstone_wado.metadata")


def _frame_of(image_id: str) -> int:
    _, _, query = image_id.partition("?")
    values = parse_qs(query).get("frame") if query else None
    if values and values[-1].isdigit() and int(values[-1]) >= 1:
        return int(values[-1])
    return 1


def dataset_metadata_provider(module: str, image_id: str) -> dict[str, Any] | None:
    """The provider for ``dicomfile:``, ``wadouri:`` and ``dicomweb:`` ids.

    ``dicomfile:`` ids answer from the cached dataset, else from the file's
    header (read once, without pixels); ``wadouri:`` ids from the dataset
    cache only (a metadata call never starts a download).  Never raises.
    """
    if module not in MODULES or not isinstance(image_id, str):
        return None
    scheme = image_id.partition(":")[0].lower()
    try:
        if scheme == "dicomfile":
            from .dicomfile import header_for_id

            ds = header_for_id(image_id)
        elif scheme in ("wadouri", "dicomweb"):
            from .part10 import dataset_cache, dataset_key

            key = dataset_key(image_id)
            ds = dataset_cache.get(key) if key else None
        else:
            return None
        if ds is None:
            return None
        return modules_from_dataset(module, ds, _frame_of(image_id))
    except Exception:  # metadata is advisory; a broken header answers nothing
        _log.debug("no %s for %r", module, image_id, exc_info=True)
        return None
