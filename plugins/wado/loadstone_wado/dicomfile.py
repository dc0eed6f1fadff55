"""Old home of the ``dicomfile:`` loader; it lives in :mod:`loadstone_wado.schemes.dicomfile`."""

from __future__ import annotations

from .part10.ids import DicomFileRef, parse_dicomfile_id
from .schemes.dicomfile import (
    SCHEME,
    MultipleSeriesError,
    dataset_for_id,
    forget_headers,
    header_for_id,
    list_series,
    load_dicomfile,
    series_image_ids,
)

__all__ = ["SCHEME", "DicomFileRef", "parse_dicomfile_id", "load_dicomfile", "series_image_ids",
           "list_series", "MultipleSeriesError", "dataset_for_id", "header_for_id", "forget_headers"]
