"""DICOM Part 10 objects: parse them with typed errors, and keep them for their other frames.

* :func:`read_part10` — a path, bytes or binary file object to a pydicom
  Dataset, or a loadstone error saying why not (:mod:`.reader`, with the
  lean parser of :mod:`.fast` for the common case);
* :data:`dataset_cache` — parsed datasets within a byte budget, one load per
  key (:mod:`.cache`); :func:`dataset_key` — the key of an image id (:mod:`.ids`);
* :mod:`.file_manager` — files handed over in memory or by path, loaded as
  ``dicomfile:N``.
"""

from __future__ import annotations

from . import file_manager
from .cache import DatasetCache, DatasetCacheInfo, dataset_cache
from .ids import DicomFileRef, dataset_key, parse_dicomfile_id
from .reader import dataset_nbytes, read_part10

__all__ = [
    "read_part10",
    "dataset_nbytes",
    "DatasetCache",
    "DatasetCacheInfo",
    "dataset_cache",
    "dataset_key",
    "DicomFileRef",
    "parse_dicomfile_id",
    "file_manager",
]
