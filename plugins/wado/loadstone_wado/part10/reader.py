"""Parse DICOM Part 10 objects (files, bytes, file objects) into Datasets, with typed errors.

:func:`read_part10` turns a file or a byte string into a pydicom Dataset or
one of loadstone's errors saying why not (empty, not DICOM, no transfer
syntax, truncated).  Files are read through :func:`loadstone.toolkit.read_file`
(regular files only, never blocking on a FIFO, capped before allocation,
memory-mapped when allowed); large values stay in the source bytes, which
the dataset keeps (:mod:`..dicom.provenance`).
"""

from __future__ import annotations

import io
import mmap
import os
import struct
from typing import Any, BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from loadstone import ImageLoadError, InvalidImageError, ResourceLimitError
from loadstone.toolkit import open_regular, read_file

from ..config import get_config
from ..dicom.provenance import nbytes_of, remember
from ..dicom.syntaxes import DEFLATED_LE
from . import fast

__all__ = ["read_part10", "dataset_nbytes"]

_PREAMBLE = 128
_HEADER_BYTES = 4096  # assumed for the parsed header when the source size is unknown
#: Elements longer than this are not copied out of the source while parsing.
_DEFER_BYTES = 64 * 1024
#: A header-only read takes this much first; longer headers are parsed from the file.
_HEADER_READ = 1 << 20
_MAX_FILE_HINT = "loadstone_wado.config max_file_bytes"

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
    return DEFLATED_LE.encode() in bytes(head[:4096])


def _parse(stream: BinaryIO, has_preamble: bool, what: str, image_id: str | None,
           header_only: bool = False, defer: bool = False) -> Dataset:
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
    limit = get_config().max_file_bytes
    if size > limit:
        raise ResourceLimitError(f"{what} is {size} bytes, above the limit of {limit} bytes "
                                 f"({_MAX_FILE_HINT})", image_id=image_id)


def _read_path(path: PathLike, image_id: str | None, header_only: bool = False) -> Dataset:
    what = repr(os.fspath(path))
    settings = get_config()
    read = read_file(path, image_id, max_bytes=settings.max_file_bytes, limit_hint=_MAX_FILE_HINT,
                     allow_mmap=settings.mmap_files and not header_only,
                     head=_HEADER_READ if header_only else None)
    # A buffer read into new memory is handed out read-only, as bytes would be.
    data = memoryview(read.data).toreadonly() if isinstance(read.data, bytearray) else read.data
    has_preamble = _check_prefix(bytes(data[:_PREAMBLE + 4]), what, image_id)
    if header_only and len(data) < read.size:
        fd, _ = open_regular(path, image_id)
        try:
            with open(fd, "rb") as stream:
                ds = _parse(stream, has_preamble, what, image_id, header_only)
        except OSError as exc:
            raise ImageLoadError(f"cannot read {what}: {exc.strerror or exc}", image_id=image_id) from exc
    else:
        ds = _parse_buffer(data, has_preamble, what, image_id, header_only)
    remember(ds, nbytes=read.size, signature=read.signature)
    return ds


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
    remember(ds, nbytes=size)
    return ds


def _parse_buffer(data: bytes | bytearray | memoryview | mmap.mmap, has_preamble: bool, what: str,
                  image_id: str | None, header_only: bool) -> Dataset:
    """Parse from memory; big values stay in ``data`` (kept on the dataset) instead of being copied.

    Deferring them saves a copy of the pixel data and, for a series kept in
    the cache, a fresh allocation per slice.  A deflated object is inflated
    by pydicom into a new stream whose offsets are not ``data``'s: parsed whole.
    """
    stream: Any = io.BytesIO(data) if isinstance(data, bytes) else _BufferReader(data)
    if has_preamble:
        parsed = fast.parse(data, stream, _DEFER_BYTES)
        if parsed is not None:
            remember(parsed, source=data)
            return parsed
        stream.seek(0)
    defer = not header_only and not _is_deflated(data[:4096])
    ds = _parse(stream, has_preamble, what, image_id, header_only, defer)
    if defer:
        remember(ds, source=data)
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
    known = nbytes_of(ds)
    if known is not None:
        return known
    total = _HEADER_BYTES
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in ds:
            value = ds[keyword].value
            total += len(value) if isinstance(value, (bytes, bytearray)) else 0
    return total
