"""The ``dicomfile:`` loader: Part 10 files on disk, or handed to the file manager.

Image ids::

    dicomfile:/data/ct/1.dcm            a path (relative paths: to the root folder, else the cwd)
    dicomfile:/data/us.dcm?frame=3      frame 3 (1-based) of a multi-frame file
    dicomfile:3                         file 3 of the file manager (``?frame=N`` works too)

A series id is a folder, a DICOMDIR or a multi-frame file:
``loadstone.series_image_ids("dicomfile:/data/ct")`` lists its DICOM files
ordered along the slice normal, then by instance number, one id per frame.
A folder holding several series needs ``?series=<Series Instance UID>``
(see :mod:`.series`); a folder or DICOMDIR given as an image id says so.
Load options: loadstone's own only (another is refused as a typo).

With a root folder configured (``config.configure(root=...)`` or
``LOADSTONE_WADO_ROOT``) every path must resolve inside it, after ``..`` and
symbolic links, or the load fails with :class:`PolicyDeniedError`.  A file
that changed on disk since it was parsed is parsed again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from loadstone import Image, InvalidImageError, PolicyDeniedError, SeriesInfo, current_load, image_loader
from loadstone.toolkit import LRUCache, is_ascii_int

from ..dicom.attributes import DatasetAttributes
from ..dicom.provenance import signature_of
from ..part10 import file_manager
from ..part10.cache import dataset_cache
from ..part10.dicomdir import is_dicomdir
from ..part10.ids import DICOMFILE_PREFIX, DicomFileRef, parse_dicomfile_id, resolve_path, split_frame
from ..part10.reader import read_part10
from ..pixels.image import image_from_dataset
from .series import MultipleSeriesError, expand_folder, is_local_location, list_location

__all__ = [
    "SCHEME",
    "load_dicomfile",
    "series_image_ids",
    "list_series",
    "MultipleSeriesError",
    "dataset_for_id",
    "header_for_id",
    "forget_headers",
]

SCHEME = "dicomfile"
_PREFIX = DICOMFILE_PREFIX


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _read(ref: DicomFileRef, header_only: bool = False) -> Dataset:
    if ref.path is not None:
        return read_part10(ref.path, image_id=ref.image_id, stop_before_pixels=header_only)
    assert ref.index is not None
    entry = file_manager.get(ref.index)
    if entry is None:
        raise InvalidImageError(f"file {ref.index} was removed from the file manager", image_id=ref.image_id)
    if isinstance(entry, str):
        path = resolve_path(entry, ref.image_id)
        return read_part10(path, image_id=ref.image_id, stop_before_pixels=header_only)
    return read_part10(entry, image_id=ref.image_id, stop_before_pixels=header_only)


def _current_path(ref: DicomFileRef) -> Path | None:
    if ref.path is not None:
        return ref.path
    entry = file_manager.get(ref.index) if ref.index is not None else None
    return Path(entry) if isinstance(entry, str) else None


def _fresh(ds: Dataset, ref: DicomFileRef) -> bool:
    path = _current_path(ref)
    return path is None or signature_of(ds) == _signature(path)


def dataset_for_id(image_id: str) -> Dataset:
    """The parsed dataset of a ``dicomfile:`` id (from the dataset cache, or read now)."""
    return _dataset(parse_dicomfile_id(image_id))


def _dataset(ref: DicomFileRef) -> Dataset:
    key = ref.key
    loaded: list[Dataset] = []

    def load() -> Dataset:
        loaded.append(_read(ref))
        return loaded[0]

    ds = dataset_cache.get_or_load(key, load)
    if not loaded and not _fresh(ds, ref):  # a cached dataset of a file changed since
        dataset_cache.remove(key)
        ds = dataset_cache.get_or_load(key, lambda: _read(ref))
    return ds


@image_loader(options=())  # only loadstone's own options: anything else is a typo
def load_dicomfile(image_id: str, options: Mapping[str, Any]) -> Image:
    """The ``dicomfile:`` loader: one frame of a Part 10 file (on a worker thread)."""
    ref = parse_dicomfile_id(image_id)
    context = current_load()
    if context is not None:
        context.check()
    try:
        ds = _dataset(ref)
    except InvalidImageError as exc:
        hint = _series_hint(ref)
        if hint is None:
            raise
        raise InvalidImageError(hint, image_id=image_id) from exc
    if context is not None:
        context.check()
    return image_from_dataset(image_id, ds, ref.frame or 1)


def _series_hint(ref: DicomFileRef) -> str | None:
    """For a folder or a DICOMDIR given as an image id: what it is, and how to load it as a series."""
    path = ref.path
    if path is None:
        return None
    if path.is_dir():
        what = "a folder"
    elif is_dicomdir(path):
        what = "a DICOMDIR (the index of a DICOM File-set)"
    else:
        return None
    series_id = f"{_PREFIX}{path}"
    return (f"{str(path)!r} is {what}: '{series_id}' is a series id, not an image id; get its image ids "
            f"with loadstone.series_image_ids({series_id!r}) (on the command line: loadstone fetch --series "
            f"{series_id} -o DIR; loadstone series {path} lists its series)")


# -- headers for metadata and series ---------------------------------------------
#: Headers read for metadata and series, most recently used kept (no pixels: a few KiB each).
_headers: LRUCache[str, Dataset] = LRUCache(8192)


def header_for_id(image_id: str, read: bool = True) -> Dataset | None:
    """A dataset with at least the header of a ``dicomfile:`` id: cached, or read now (no pixels).

    For metadata: never raises, returns None when the id is bad, denied or unreadable.
    """
    try:
        ref = parse_dicomfile_id(image_id)
    except (InvalidImageError, PolicyDeniedError):
        return None
    key = ref.key
    ds = dataset_cache.get(key)
    if ds is not None and _fresh(ds, ref):
        return ds
    header = _headers.get(key)
    if header is not None and _fresh(header, ref):
        return header
    if not read:
        return None
    try:
        header = _read(ref, header_only=True)
    except Exception:  # metadata is advisory: an unreadable file has none
        return None
    _headers.put(key, header)
    return header


def forget_headers() -> None:
    """Drop every remembered header (tests and long-running apps)."""
    _headers.clear()


def _read_header(path: Path, image_id: str) -> Dataset:
    """The header of a file found in a series folder, remembered for its metadata."""
    ref = DicomFileRef(f"{_PREFIX}{path}", path, None, None)
    header = _headers.get(ref.key)
    if header is None or not _fresh(header, ref):
        header = _read(ref, header_only=True)
        _headers.put(ref.key, header)
    return header


def series_image_ids(series_id: str) -> list[str] | None:
    """Expand a ``dicomfile:`` folder, DICOMDIR or multi-frame file into ordered image ids; None if not ours.

    A folder is grouped by Series Instance UID: one series gives its ids,
    several raise :class:`.series.MultipleSeriesError` listing them with the
    ids that pick each one (``dicomfile:/data/mixed?series=<UID>``).  Files
    that are not DICOM, or carry no pixel data, are skipped.  Order:
    position along the slice normal (from the first oriented frame), then
    instance number, then file name and frame number.
    """
    if not isinstance(series_id, str) or series_id[:len(_PREFIX)].lower() != _PREFIX:
        return None
    rest = series_id[len(_PREFIX):]
    if is_ascii_int(rest.partition("?")[0]):  # a file of the file manager: a series of its frames
        rest, frame = split_frame(rest, series_id)
        if frame is not None:
            raise InvalidImageError("a series id names a folder or a file, without ?frame=",
                                    image_id=series_id)
        ref = parse_dicomfile_id(series_id)
        header = _read(ref, header_only=True)
        count = DatasetAttributes(header).number_of_frames()
        return [f"{_PREFIX}{ref.index}?frame={n}" for n in range(1, count + 1)]
    return expand_folder(series_id, _read_header)


def list_series(location: str, recursive: bool = False) -> list[SeriesInfo] | None:
    """The series of a folder or DICOMDIR (a ``dicomfile:`` id or a bare path); None for other ids."""
    if not isinstance(location, str) or not is_local_location(location):
        return None
    return list_location(location, recursive, _read_header)
