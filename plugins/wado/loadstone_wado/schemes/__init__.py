"""The image loaders, metadata providers and series expansion the plugin registers.

* :mod:`.dicomfile` — ``dicomfile:`` (Part 10 files, the file manager);
* :mod:`.wadouri` — ``wadouri:`` / ``dicomweb:`` (a Part 10 object over HTTP);
* :mod:`.wadors` — ``wadors:`` (frames over DICOMweb);
* :mod:`.metadata` — the metadata provider of Part 10 datasets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from loadstone import ImageLoader

from . import dicomfile, wadors, wadouri
from .metadata import dataset_metadata_provider

__all__ = ["IMAGE_LOADERS", "METADATA_PROVIDERS", "series_image_ids"]

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


def series_image_ids(series_id: str) -> list[str] | None:
    """A ``dicomfile:`` folder or a ``wadors:`` series; None for other ids."""
    ids = dicomfile.series_image_ids(series_id)
    if ids is None:
        ids = wadors.series_image_ids(series_id)
    return ids
