"""DICOM Part 10 objects: parse them with typed errors, and keep them for their other frames.

:func:`read_part10` turns a file or a byte string into a pydicom Dataset or
one of loadstone's errors saying why not (empty, not DICOM, no transfer
syntax, truncated).  :data:`dataset_cache` keeps parsed datasets, counted in
bytes against a budget, so the N frames of a multi-frame object (and its
metadata) cost one parse, whether they come from ``dicomfile:`` or
``wadouri:``; concurrent requests for one key share one load.

Cache keys are strings; :func:`dataset_key` gives the canonical key of an
image id (the id without its frame), which the metadata provider uses to
find a cached dataset.
"""

from __future__ import annotations

import io
import mmap
import os
import stat
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qsl, urlencode

from loadstone import (
    ImageLoadError,
    InvalidImageError,
    LoadCancelledError,
    LoadTimeoutError,
    ResourceLimitError,
)

from .dicom.provenance import NBYTES_ATTRIBUTE as _NBYTES_ATTRIBUTE
from .dicom.provenance import SIGNATURE_ATTRIBUTE, SOURCE_ATTRIBUTE

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = [
    "read_part10",
    "DatasetCache",
    "DatasetCacheInfo",
    "dataset_cache",
    "dataset_key",
    "dataset_nbytes",
]

_PREAMBLE = 128
_HEADER_BYTES = 4096  # assumed for the parsed header when the source size is unknown
#: Elements longer than this are not copied out of the source while parsing.
_DEFER_BYTES = 64 * 1024
_DEFLATED = "1.2.840.10008.1.2.1.99"
_MMAP_MIN_BYTES = 64 * 1024

PathLike = str | os.PathLike[str]
Source = bytes | bytearray | memoryview | PathLike | BinaryIO


def _check_prefix(head: bytes, what: str, image_id: str | None) -> bool:
    """True for a Part 10 preamble + ``DICM``; False for a bare file meta group; else raise."""
    if len(head) >= _PREAMBLE + 4 and head[_PREAMBLE:_PREAMBLE + 4] == b"DICM":
        return True
    if len(head) >= 8 and head[:2] == b"\x02\x00" and head[3:4] == b"\x00":
        return False  # file meta information without the 128-byte preamble: tolerated
    kind = _sniff(head)
    raise InvalidImageError(
        f"{what} is not a DICOM Part 10 file: there is no 'DICM' prefix after the 128-byte preamble"
        + (f" (it looks like {kind})" if kind else ""), image_id=image_id)


def _sniff(head: bytes) -> str | None:
    signatures = {
        b"\x89PNG\r\n\x1a\n": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
        b"%PDF": "a PDF document", b"PK\x03\x04": "a ZIP archive", b"\x1f\x8b": "a gzip file",
        b"II*\x00": "a TIFF image", b"MM\x00*": "a TIFF image", b"<": "text or HTML",
    }
    for signature, kind in signatures.items():
        if head.startswith(signature):
            return kind
    return None


def _is_deflated(head: bytes | bytearray | memoryview | mmap.mmap) -> bool:
    """Whether the file meta names Deflated Explicit VR Little Endian (its offsets are not the file's)."""
    return _DEFLATED.encode() in bytes(head[:4096])


def _parse(stream: BinaryIO, has_preamble: bool, what: str, image_id: str | None,
           header_only: bool = False, defer: bool = False) -> Dataset:
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        ds = dcmread(stream, force=not has_preamble, stop_before_pixels=header_only,
                     defer_size=_DEFER_BYTES if defer else None)
    except InvalidDicomError as exc:
        raise InvalidImageError(f"{what} is not a valid DICOM object: {exc}", image_id=image_id) from exc
    except (EOFError, struct.error) as exc:
        raise InvalidImageError(f"{what} is truncated: the data ends inside an element ({exc})",
                                image_id=image_id) from exc
    except (ValueError, KeyError, TypeError, IndexError, NotImplementedError, OverflowError) as exc:
        raise InvalidImageError(f"{what} could not be parsed: {type(exc).__name__}: {exc}",
                                image_id=image_id) from exc
    meta = getattr(ds, "file_meta", None)
    if meta is None or not meta.get("TransferSyntaxUID"):
        raise InvalidImageError(
            f"{what} has no (0002,0010) Transfer Syntax UID in its file meta information, so its "
            "encoding (and its pixel data) cannot be interpreted", image_id=image_id)
    return ds


def _too_big(size: int, what: str, image_id: str | None) -> None:
    from .config import get_config

    limit = get_config().max_file_bytes
    if size > limit:
        raise ResourceLimitError(f"{what} is {size} bytes, above the limit of {limit} bytes "
                                 "(loadstone_wado.config max_file_bytes)", image_id=image_id)


def _read_path(path: PathLike, image_id: str | None, header_only: bool = False) -> Dataset:
    what = repr(os.fspath(path))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise InvalidImageError(f"no such file {what}", image_id=image_id) from exc
    except IsADirectoryError as exc:
        raise InvalidImageError(f"{what} is a directory, not a DICOM file", image_id=image_id) from exc
    except OSError as exc:
        raise ImageLoadError(f"cannot open {what}: {exc.strerror or exc}", image_id=image_id) from exc
    try:
        status = os.fstat(fd)
        if stat.S_ISDIR(status.st_mode):
            raise InvalidImageError(f"{what} is a directory, not a DICOM file", image_id=image_id)
        size = status.st_size
        if size == 0:
            raise InvalidImageError(f"{what} is empty (0 bytes)", image_id=image_id)
        _too_big(size, what, image_id)
        if header_only:
            data: bytes | mmap.mmap = os.read(fd, min(size, 1 << 20))
        else:
            data = _map_or_read(fd, size)
        has_preamble = _check_prefix(data[:_PREAMBLE + 4], what, image_id)
        if header_only and len(data) < size:
            with open(fd, "rb", closefd=False) as stream:
                stream.seek(0)
                ds = _parse(stream, has_preamble, what, image_id, header_only)
        else:
            ds = _parse_buffer(data, has_preamble, what, image_id, header_only)
    except OSError as exc:
        raise ImageLoadError(f"cannot read {what}: {exc.strerror or exc}", image_id=image_id) from exc
    finally:
        os.close(fd)
    ds.__dict__[_NBYTES_ATTRIBUTE] = size
    ds.__dict__[SIGNATURE_ATTRIBUTE] = (status.st_mtime_ns, size)
    return ds


def _map_or_read(fd: int, size: int) -> bytes | mmap.mmap:
    """The whole file: memory-mapped (read-only, pages populated) when allowed, else read.

    Mapping shares the page cache: no copy and no fresh memory to fault in,
    which for a series kept in the image cache is most of the cost of a load
    (a 512 KiB slice: ~35 µs mapped against ~210 µs read into new memory,
    measured).  nibabel maps image files the same way.  The price is the
    same as nibabel's: a file truncated in place while its images are cached
    faults on access, so replace files by renaming, never by rewriting them.
    """
    from .config import get_config

    if get_config().mmap_files and size >= _MMAP_MIN_BYTES:
        flags = mmap.MAP_PRIVATE | getattr(mmap, "MAP_POPULATE", 0)
        try:
            return mmap.mmap(fd, size, flags=flags, prot=mmap.PROT_READ)
        except (OSError, ValueError, AttributeError):
            pass  # not mappable (a pipe, a special file system): read it
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 24)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


class _BufferReader:
    """A read-only file-like view of a buffer, for pydicom, without copying the buffer.

    ``io.BytesIO`` copies anything that is not ``bytes``; this reads slices.
    """

    __slots__ = ("_view", "_position", "name")

    def __init__(self, buffer: bytes | bytearray | memoryview | mmap.mmap) -> None:
        self._view = memoryview(buffer).cast("B")
        self._position = 0
        self.name = None

    def read(self, size: int | None = -1) -> bytes:
        start = self._position
        end = len(self._view) if size is None or size < 0 else min(start + size, len(self._view))
        self._position = max(end, start)
        return bytes(self._view[start:end])

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self._position
        elif whence == 2:
            offset += len(self._view)
        self._position = max(0, offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return False


def _read_bytes(data: bytes | bytearray | memoryview, image_id: str | None,
                header_only: bool = False) -> Dataset:
    size = len(data) if not isinstance(data, memoryview) else data.nbytes
    what = f"the {size}-byte object"
    if size == 0:
        raise InvalidImageError("the DICOM object is empty (0 bytes)", image_id=image_id)
    _too_big(size, what, image_id)
    head = bytes(data[:_PREAMBLE + 4])
    has_preamble = _check_prefix(head, what, image_id)
    ds = _parse_buffer(data, has_preamble, what, image_id, header_only)
    ds.__dict__[_NBYTES_ATTRIBUTE] = size
    return ds


def _parse_buffer(data: bytes | bytearray | memoryview | mmap.mmap, has_preamble: bool, what: str,
                  image_id: str | None, header_only: bool) -> Dataset:
    """Parse from memory; big values stay in ``data`` (kept on the dataset) instead of being copied.

    Deferring them saves a copy of the pixel data and, for a series kept in
    the cache, a fresh allocation per slice.  A deflated object is inflated
    by pydicom into a new stream whose offsets are not ``data``'s: parsed whole.
    """
    from . import _part10_fast

    stream: Any = io.BytesIO(data) if isinstance(data, bytes) else _BufferReader(data)
    if has_preamble:
        fast = _part10_fast.parse(data, stream, _DEFER_BYTES)
        if fast is not None:
            fast.__dict__[SOURCE_ATTRIBUTE] = data
            return fast
        stream.seek(0)
    defer = not header_only and not _is_deflated(data[:4096])
    ds = _parse(stream, has_preamble, what, image_id, header_only, defer)
    if defer:
        ds.__dict__[SOURCE_ATTRIBUTE] = data
    return ds


def read_part10(data: Source, *, image_id: str | None = None, stop_before_pixels: bool = False) -> Dataset:
    """Parse a Part 10 object (a path, bytes, or a binary file object) into a Dataset.

    Raises :class:`InvalidImageError` for empty data, data that is not DICOM,
    a missing (0002,0010) Transfer Syntax UID or an unreadable structure
    (a missing file too), :class:`ResourceLimitError` above ``max_file_bytes``,
    :class:`ImageLoadError` for other I/O failures.  Pixel data is read but
    not decoded (or, with ``stop_before_pixels``, not read: for headers only).
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        return _read_bytes(data, image_id, stop_before_pixels)
    if isinstance(data, (str, os.PathLike)):
        return _read_path(data, image_id, stop_before_pixels)
    if hasattr(data, "read"):
        try:
            content = data.read()
        except OSError as exc:
            raise ImageLoadError(f"cannot read the file object: {exc}", image_id=image_id) from exc
        if not isinstance(content, (bytes, bytearray)):
            raise TypeError("read_part10 needs a binary file object (read() returned text)")
        return _read_bytes(content, image_id, stop_before_pixels)
    raise TypeError(f"read_part10 takes bytes, a path or a binary file object, not {type(data).__name__}")


def dataset_nbytes(ds: Dataset) -> int:
    """Bytes a parsed dataset holds: its source size when known, else pixel data plus a header guess."""
    known = ds.__dict__.get(_NBYTES_ATTRIBUTE)
    if isinstance(known, int):
        return known
    total = _HEADER_BYTES
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in ds:
            value = ds[keyword].value
            total += len(value) if isinstance(value, (bytes, bytearray)) else 0
    return total


# -- the cache ---------------------------------------------------------------
@dataclass(frozen=True)
class DatasetCacheInfo:
    """Sizes of :class:`DatasetCache`, as ``loadstone.cache.get_cache_info()`` gives for images."""

    maximum_size_bytes: int
    cache_size_bytes: int
    number_of_datasets_cached: int


class DatasetCache:
    """Bytes-budgeted LRU of parsed datasets; one load per key shared by concurrent callers.

    ``maximum_size_bytes=None`` follows ``config.dataset_cache_bytes``.  A
    dataset larger than the whole budget is returned but not kept.  A failed
    load leaves nothing behind; a load cancelled in one caller is retried by
    the others rather than failing them.
    """

    def __init__(self, maximum_size_bytes: int | None = None) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Dataset, int]] = OrderedDict()
        self._pending: dict[str, Future[Dataset]] = {}
        self._size = 0
        self._maximum = maximum_size_bytes

    # -- settings ----------------------------------------------------------
    @property
    def maximum_size_bytes(self) -> int:
        """The budget in bytes."""
        if self._maximum is not None:
            return self._maximum
        from .config import get_config

        return get_config().dataset_cache_bytes

    def set_maximum_size_bytes(self, maximum_size_bytes: int | None) -> None:
        """Change the budget (None: follow the configuration); evicts down to it at once."""
        if maximum_size_bytes is not None and (
                isinstance(maximum_size_bytes, bool) or not isinstance(maximum_size_bytes, int)
                or maximum_size_bytes < 0):
            raise ValueError("maximum_size_bytes must be a non-negative int or None, "
                             f"got {maximum_size_bytes!r}")
        with self._lock:
            self._maximum = maximum_size_bytes
            self._evict(self.maximum_size_bytes)

    def info(self) -> DatasetCacheInfo:
        """Budget, bytes used and number of datasets."""
        with self._lock:
            return DatasetCacheInfo(self.maximum_size_bytes, self._size, len(self._entries))

    # -- access ------------------------------------------------------------
    def get(self, key: str) -> Dataset | None:
        """The cached dataset for ``key`` (marked recently used), or None; never loads."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def keys(self) -> list[str]:
        """Cached keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def get_or_load(self, key: str, load: Callable[[], Dataset]) -> Dataset:
        """The dataset for ``key``: cached, being loaded by another caller (wait), or ``load()`` now."""
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    return entry[0]
                pending = self._pending.get(key)
                if pending is None:
                    pending = self._pending[key] = Future()
                    owner = True
                else:
                    owner = False
            if owner:
                return self._load(key, load, pending)
            try:
                return _wait(pending)
            except (LoadCancelledError, LoadTimeoutError) as exc:
                if _cancelled_here():
                    raise
                del exc  # the loading caller was cancelled, not us: load it ourselves
                continue

    def _load(self, key: str, load: Callable[[], Dataset], pending: Future[Dataset]) -> Dataset:
        try:
            ds = load()
        except BaseException as exc:
            with self._lock:
                self._pending.pop(key, None)
            pending.set_exception(exc)
            raise
        size = dataset_nbytes(ds)
        with self._lock:
            self._pending.pop(key, None)
            maximum = self.maximum_size_bytes
            if size <= maximum:
                old = self._entries.pop(key, None)
                if old is not None:
                    self._size -= old[1]
                self._entries[key] = (ds, size)
                self._size += size
                self._evict(maximum)
        pending.set_result(ds)
        return ds

    def put(self, key: str, ds: Dataset) -> None:
        """Store a dataset parsed elsewhere (replacing any under ``key``)."""
        size = dataset_nbytes(ds)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= old[1]
            maximum = self.maximum_size_bytes
            if size <= maximum:
                self._entries[key] = (ds, size)
                self._size += size
                self._evict(maximum)

    def remove(self, key: str) -> bool:
        """Forget ``key``; True if it was cached."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                return False
            self._size -= entry[1]
            return True

    def purge(self) -> None:
        """Forget every dataset (loads in flight finish and are kept)."""
        with self._lock:
            self._entries.clear()
            self._size = 0

    def _evict(self, maximum: int) -> None:
        while self._size > maximum and self._entries:
            _, (_, size) = self._entries.popitem(last=False)
            self._size -= size


def _cancelled_here() -> bool:
    from loadstone import current_load

    context = current_load()
    return context is not None and context.cancelled


def _wait(pending: Future[Dataset]) -> Dataset:
    """Wait for another caller's load, still honouring this load's cancellation."""
    from loadstone import current_load

    context = current_load()
    if context is None:
        return pending.result()
    while True:
        context.check()
        try:
            return pending.result(timeout=0.05)
        except TimeoutError:
            continue


#: The process-wide dataset cache shared by ``dicomfile:`` and ``wadouri:``.
dataset_cache = DatasetCache()


def dataset_key(image_id: str) -> str | None:
    """The cache key of an image id's dataset: the id without its frame, scheme normalised.

    ``dicomfile:`` ids map to their resolved path (or file-manager index);
    ``wadouri:`` and ``dicomweb:`` ids to ``wadouri:`` + the URL without its
    ``frame`` parameter.  None for other schemes and malformed ids.
    """
    if not isinstance(image_id, str):
        return None
    scheme, sep, rest = image_id.partition(":")
    if not sep:
        return None
    scheme = scheme.lower()
    if scheme == "dicomfile":
        from .dicomfile import key_for_id

        return key_for_id(image_id)
    if scheme in ("wadouri", "dicomweb"):
        url, qmark, query = rest.partition("?")
        if not qmark:
            return f"wadouri:{url}"
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "frame"]
        return f"wadouri:{url}?{urlencode(kept)}" if kept else f"wadouri:{url}"
    return None
