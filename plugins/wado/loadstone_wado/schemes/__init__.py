"""The image loaders, metadata providers and series expansion the plugin registers.

* :mod:`.dicomfile` — ``dicomfile:`` (Part 10 files, the file manager);
* :mod:`.wadouri` — ``wadouri:`` / ``dicomweb:`` (a Part 10 object over HTTP);
* :mod:`.wadors` — ``wadors:`` (frames over DICOMweb);
* :mod:`.metadata` — the metadata provider of Part 10 datasets;
* :mod:`.series` — the series of a folder or DICOMDIR: grouped, listed, expanded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from loadstone import ImageLoader, SeriesInfo

from . import dicomfile, wadors, wadouri
from .metadata import dataset_metadata_provider
from .series import MultipleSeriesError

__all__ = ["IMAGE_LOADERS", "METADATA_PROVIDERS", "series_image_ids", "list_series", "MultipleSeriesError"]

#: Scheme -> the loader registered for it.
IMAGE_LOADERS: Mapping[str, ImageLoader] = {
    "dicomfile": dicomfile.load_dicomfile,
    "wadouri": wadouri.load_wadouri,
    "dicomweb": wadouri.load_wadouri,
    "wadors": wadors.load_wadors,
}

#: (provider, priority): Part 10 datasets (dicomfile:, wadouri:) and DICOM JSON (wadors:).
METADATA_PROVIDERS: list[tuple[Callable[[str, str], Any], int]] = [
    (dataset_metadata_provider, 0),
    (wadors.metadata_provider, 0),
]


def series_image_ids(series_id: str, options: Mapping[str, Any] | None = None) -> list[str] | None:
    """A ``dicomfile:`` folder or a ``wadors:`` series (its metadata fetched with ``options``); None else."""
    ids = dicomfile.series_image_ids(series_id)
    if ids is None:
        ids = wadors.series_image_ids(series_id, options)
    return ids


def list_series(location: str, recursive: bool = False) -> list[SeriesInfo] | None:
    """The series of a ``dicomfile:`` folder or DICOMDIR (or a bare path); None for other locations."""
    return dicomfile.list_series(location, recursive)
