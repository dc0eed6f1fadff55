"""The ``dicomfile:`` loader: Part 10 files on disk, or handed to :mod:`.file_manager`.

Image ids::

    dicomfile:/data/ct/1.dcm            a path (relative paths: to the root folder, else the cwd)
    dicomfile:/data/us.dcm?frame=3      frame 3 (1-based) of a multi-frame file
    dicomfile:3                         file 3 of the file manager (``?frame=N`` works too)

A series id is a folder (or a multi-frame file): ``loadstone.series_image_ids
("dicomfile:/data/ct")`` lists its DICOM files ordered along the slice normal,
then by instance number, one id per frame.

With a root folder configured (``config.configure(root=...)`` or
``LOADSTONE_WADO_ROOT``) every path must resolve inside it, after ``..`` and
symbolic links, or the load fails with :class:`PolicyDeniedError`.  A file
that changed on disk since it was parsed is parsed again.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadstone import Image, InvalidImageError, PolicyDeniedError, current_load, image_loader

from . import file_manager
from .part10 import SIGNATURE_ATTRIBUTE, dataset_cache, read_part10
from .pixels import image_from_dataset

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "SCHEME",
    "DicomFileRef",
    "parse_dicomfile_id",
    "key_for_id",
    "load_dicomfile",
    "load_dicomfile_image",
    "series_image_ids",
    "dataset_for_id",
    "header_for_id",
]

SCHEME = "dicomfile"
_PREFIX = "dicomfile:"
_SIGNATURE = SIGNATURE_ATTRIBUTE


@dataclass(frozen=True)
class DicomFileRef:
    """A parsed ``dicomfile:`` id: a resolved path or a file-manager index, and a frame."""

    image_id: str
    path: Path | None
    index: int | None
    frame: int | None

    @property
    def key(self) -> str:
        """The dataset-cache key: the resolved path, or ``dicomfile:#N`` for the file manager."""
        if self.path is not None:
            return f"{_PREFIX}{self.path}"
        return f"{_PREFIX}#{self.index}"


def _check_root(path: Path, image_id: str) -> Path:
    """Resolve ``path`` (``..`` and symlinks) and enforce the configured root folder.

    Without a root, an absolute path is only normalised (no symlink lookups:
    resolving costs a system call per path component, on every load).
    """
    from .config import get_config

    root = get_config().root
    if root is None:
        text = os.path.expanduser(str(path))
        return Path(os.path.abspath(text))
    candidate = path.expanduser()
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise InvalidImageError(f"cannot resolve the path {str(path)!r}: {exc}", image_id=image_id) from exc
    if root is not None and not resolved.is_relative_to(root):
        raise PolicyDeniedError(
            f"the path {str(path)!r} resolves to {str(resolved)!r}, outside the configured root folder "
            f"{str(root)!r}", image_id=image_id)
    return resolved


def _split_frame(rest: str, image_id: str) -> tuple[str, int | None]:
    body, qmark, query = rest.rpartition("?")
    if not qmark or not query.lower().startswith("frame="):
        return rest, None
    text = query[6:]
    if not text.isdigit():
        raise InvalidImageError(f"the frame {text!r} is not a number (frames are 1-based integers)",
                                image_id=image_id)
    frame = int(text)
    if frame < 1:
        raise InvalidImageError(f"frame {frame} does not exist: frame numbers start at 1", image_id=image_id)
    return body, frame


def parse_dicomfile_id(image_id: str) -> DicomFileRef:
    """Parse and check a ``dicomfile:`` id (root policy included); typed errors say what is wrong."""
    if not isinstance(image_id, str) or image_id[:len(_PREFIX)].lower() != _PREFIX:
        raise InvalidImageError(f"{image_id!r} is not a dicomfile: image id", image_id=str(image_id))
    rest, frame = _split_frame(image_id[len(_PREFIX):], image_id)
    if rest.startswith("file://"):
        rest = rest[len("file://"):]
    if not rest:
        raise InvalidImageError("the dicomfile: id names no file", image_id=image_id)
    if rest.isdigit():
        index = int(rest)
        entry = file_manager.get(index)
        if entry is None:
            raise InvalidImageError(
                f"the file manager has no file {index} (added files are 'dicomfile:N' ids from "
                "loadstone_wado.file_manager.add)", image_id=image_id)
        if isinstance(entry, str):
            _check_root(Path(entry), image_id)
        return DicomFileRef(image_id, None, index, frame)
    return DicomFileRef(image_id, _check_root(Path(rest), image_id), None, frame)


def key_for_id(image_id: str) -> str | None:
    """The dataset-cache key of a ``dicomfile:`` id, or None when the id is malformed or denied."""
    try:
        return parse_dicomfile_id(image_id).key
    except InvalidImageError:
        return None
    except PolicyDeniedError:
        return None


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
        path = _check_root(Path(entry), ref.image_id)
        return read_part10(path, image_id=ref.image_id, stop_before_pixels=header_only)
    return read_part10(entry, image_id=ref.image_id, stop_before_pixels=header_only)


def _current_path(ref: DicomFileRef) -> Path | None:
    if ref.path is not None:
        return ref.path
    entry = file_manager.get(ref.index) if ref.index is not None else None
    return Path(entry) if isinstance(entry, str) else None


def _fresh(ds: Dataset, ref: DicomFileRef) -> bool:
    path = _current_path(ref)
    return path is None or ds.__dict__.get(_SIGNATURE) == _signature(path)


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


def load_dicomfile_image(image_id: str, options: Mapping[str, Any]) -> Image:
    """Load one ``dicomfile:`` image synchronously (the loader runs this on a worker thread)."""
    ref = parse_dicomfile_id(image_id)
    context = current_load()
    if context is not None:
        context.check()
    ds = _dataset(ref)
    if context is not None:
        context.check()
    return image_from_dataset(image_id, ds, ref.frame or 1)


#: The ImageLoader registered for ``dicomfile:``.
load_dicomfile = image_loader(load_dicomfile_image)


# -- headers for metadata and series ---------------------------------------------
_HEADER_ENTRIES = 8192
_headers: OrderedDict[str, Dataset] = OrderedDict()
_headers_lock = threading.Lock()


def _remember_header(key: str, ds: Dataset) -> None:
    with _headers_lock:
        _headers[key] = ds
        _headers.move_to_end(key)
        while len(_headers) > _HEADER_ENTRIES:
            _headers.popitem(last=False)


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
    with _headers_lock:
        header = _headers.get(key)
    if header is not None and _fresh(header, ref):
        return header
    if not read:
        return None
    try:
        header = _read(ref, header_only=True)
    except Exception:  # metadata is advisory: an unreadable file has none
        return None
    _remember_header(key, header)
    return header


def forget_headers() -> None:
    """Drop every remembered header (tests and long-running apps)."""
    with _headers_lock:
        _headers.clear()


def _frames(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _numbers(value: Any, count: int) -> list[float] | None:
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count and all(math.isfinite(n) for n in numbers) else None


def _frame_geometry(ds: Dataset, frames: int) -> list[tuple[list[float] | None, list[float] | None]]:
    """(position, orientation) per frame, from functional groups when present."""
    from .dicom.attributes import DatasetAttributes, frame_value

    source = DatasetAttributes(ds)
    result = []
    for frame in range(1, frames + 1):
        position = frame_value(source, frame, "PlanePositionSequence", "ImagePositionPatient")
        orientation = frame_value(source, frame, "PlaneOrientationSequence", "ImageOrientationPatient")
        result.append((_numbers(position, 3) if position is not None else None,
                       _numbers(orientation, 6) if orientation is not None else None))
        if frames > 1 and frame == 1 and "PerFrameFunctionalGroupsSequence" not in ds:
            result.extend([result[0]] * (frames - 1))  # one geometry for every frame
            break
    return result


def _instance_number(ds: Dataset) -> int:
    try:
        return int(ds.get("InstanceNumber", 0) or 0)
    except (TypeError, ValueError):
        return 0


def series_image_ids(series_id: str) -> list[str] | None:
    """Expand a ``dicomfile:`` folder (or multi-frame file) into ordered image ids; None if not ours.

    Files that are not DICOM, or carry no pixel data, are skipped.  Order:
    position along the slice normal (from the first oriented frame), then
    instance number, then file name and frame number.
    """
    if not isinstance(series_id, str) or series_id[:len(_PREFIX)].lower() != _PREFIX:
        return None
    rest, frame = _split_frame(series_id[len(_PREFIX):], series_id)
    if frame is not None:
        raise InvalidImageError("a series id names a folder or a file, without ?frame=", image_id=series_id)
    if rest.isdigit():
        ref = parse_dicomfile_id(series_id)
        header = _read(ref, header_only=True)
        return [f"{_PREFIX}{ref.index}?frame={n}" for n in range(1, _frames(header) + 1)]
    path = _check_root(Path(rest[len("file://"):] if rest.startswith("file://") else rest), series_id)
    if path.is_file():
        candidates = [path]
    elif path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        raise InvalidImageError(f"no such folder or file {str(path)!r}", image_id=series_id)

    entries: list[_Entry] = []
    for candidate in candidates:
        context = current_load()
        if context is not None:
            context.check()
        try:
            resolved = _check_root(candidate, series_id)
            ref = DicomFileRef(f"{_PREFIX}{resolved}", resolved, None, None)
            header = _read(ref, header_only=True)
        except Exception:  # a file that is not DICOM, unreadable or denied is skipped
            continue
        if "Rows" not in header or "Columns" not in header:
            continue  # no image (a DICOMDIR, a report)
        _remember_header(ref.key, header)
        frames = _frames(header)
        number = _instance_number(header)
        for frame_number, (position, orientation) in enumerate(_frame_geometry(header, frames), 1):
            entries.append(_Entry(resolved, frames, frame_number, number, position, orientation))
    return _ordered_ids(entries)


@dataclass(frozen=True)
class _Entry:
    path: Path
    frames: int
    frame: int
    instance_number: int
    position: list[float] | None
    orientation: list[float] | None


def _ordered_ids(entries: list[_Entry]) -> list[str]:
    normal = None
    for entry in entries:
        if entry.orientation is not None:
            row, column = entry.orientation[:3], entry.orientation[3:]
            normal = (row[1] * column[2] - row[2] * column[1],
                      row[2] * column[0] - row[0] * column[2],
                      row[0] * column[1] - row[1] * column[0])
            break

    def sort_key(entry: _Entry) -> tuple[Any, ...]:
        if normal is not None and entry.position is not None:
            distance = sum(p * n for p, n in zip(entry.position, normal, strict=True))
            return (0, distance, entry.instance_number, entry.path.name, entry.frame)
        return (1, 0.0, entry.instance_number, entry.path.name, entry.frame)

    ordered = sorted(entries, key=sort_key)
    return [f"{_PREFIX}{e.path}" if e.frames == 1 else f"{_PREFIX}{e.path}?frame={e.frame}" for e in ordered]
