"""Metadata providers: answers for ``loadstone.metadata.get(module, image_id)``.

* :func:`dataset_metadata_provider` — ``dicomfile:`` ids from the cached
  dataset, else from the file's header (read once, without pixels);
  ``wadouri:``/``dicomweb:`` ids from the dataset cache only (a metadata call
  never starts a download).
* :func:`wadors_metadata_provider` — ``wadors:`` ids from the DICOM JSON the
  metadata manager holds (never fetches).

Both build the modules of :mod:`loadstone_wado.dicom.modules` and never raise.
Both answer the ``"dataset"`` module too: the whole header for the tags the
modules don't cover, a pydicom ``Dataset`` (Part 10) or the instance's DICOM
JSON (WADO-RS).  It is the object loadstone keeps (shared with its caches):
read it, don't modify it (``copy.deepcopy`` it for a copy of your own).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from loadstone.toolkit import is_ascii_int

from ..dicom.modules import MODULES, modules_from_dataset
from ..part10.cache import dataset_cache
from ..part10.ids import dataset_key
from .dicomfile import header_for_id

__all__ = ["dataset_metadata_provider", "DATASET_MODULE"]

#: The metadata module that answers the whole header (loadstone's name for it).
DATASET_MODULE = "dataset"

_log = logging.getLogger("loadstone_wado.metadata")


def _frame_of(image_id: str) -> int:
    _, _, query = image_id.partition("?")
    values = parse_qs(query).get("frame") if query else None
    if values and is_ascii_int(values[-1]) and int(values[-1]) >= 1:
        return int(values[-1])
    return 1


def dataset_metadata_provider(module: str, image_id: str) -> Any:
    """The provider for ``dicomfile:``, ``wadouri:`` and ``dicomweb:`` ids.

    ``dicomfile:`` ids answer from the cached dataset, else from the file's
    header (read once, without pixels); ``wadouri:`` ids from the dataset
    cache only (a metadata call never starts a download).  ``"dataset"``
    answers the pydicom Dataset itself (the header; with Pixel Data once the
    image was loaded).  Never raises.
    """
    if (module not in MODULES and module != DATASET_MODULE) or not isinstance(image_id, str):
        return None
    scheme = image_id.partition(":")[0].lower()
    try:
        if scheme == "dicomfile":
            ds = header_for_id(image_id)
        elif scheme in ("wadouri", "dicomweb"):
            key = dataset_key(image_id)
            ds = dataset_cache.get(key) if key else None
        else:
            return None
        if ds is None:
            return None
        if module == DATASET_MODULE:
            return ds
        return modules_from_dataset(module, ds, _frame_of(image_id))
    except Exception:  # metadata is advisory; a broken header answers nothing
        _log.debug("no %s for %r", module, image_id, exc_info=True)
        return None
