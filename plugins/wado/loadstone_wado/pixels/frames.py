"""Where frame N lives inside a dataset's Pixel Data.

Native data: at ``N x frame length``.  Encapsulated data: one or more
fragments per frame, found through the Extended Offset Table, the Basic
Offset Table, one-fragment-per-frame, or (for JPEG without offsets) the
codestream markers.  The fragment table of a multi-frame object is built
once and kept on the dataset, so reading all N frames costs O(N), not O(N²).
"""

from __future__ import annotations

import struct
import threading
from typing import Any

from pydicom.dataset import Dataset
from pydicom.encaps import get_frame

from loadstone import InvalidImageError

from ..dicom.provenance import source_of

__all__ = ["pixel_buffer", "encapsulated_frame", "FragmentTable"]

_ITEM = 0xE000FFFE  # (FFFE,E000) read as little-endian uint32 of group then element
_SEQUENCE_END = 0xE0DDFFFE
_header = struct.Struct("<II")
_table_lock = threading.Lock()


_PIXEL_TAGS = (
    (0x7FE00010, "PixelData"), (0x7FE00008, "FloatPixelData"), (0x7FE00009, "DoubleFloatPixelData"),
)


def _element(ds: Dataset, tag: int) -> Any:
    elements = getattr(ds, "_dict", None)  # no Tag() conversion and no deferred read
    if isinstance(elements, dict):
        return elements.get(tag)
    return ds.get_item(tag, keep_deferred=True)


def pixel_buffer(ds: Dataset) -> bytes | memoryview:
    """The stored bytes of Pixel Data (or Float / Double Float Pixel Data), without conversion.

    A value that :func:`loadstone_wado.part10.read_part10` left unread
    (deferred) is a zero-copy view of the object's bytes kept on the dataset.
    """
    for tag, keyword in _PIXEL_TAGS:
        element = _element(ds, tag)
        if element is None:
            continue
        source = source_of(ds)
        is_raw = getattr(element, "is_raw", False)
        if is_raw and element.value is None and source is not None and element.length != 0xFFFFFFFF:
            start, length = element.value_tell, element.length
            if start + length > len(source):
                raise InvalidImageError(
                    f"the {keyword} element is truncated: it declares {length} bytes at offset {start} "
                    f"but the object ends at byte {len(source)}")
            return memoryview(source)[start:start + length]
        try:
            value = element.value if is_raw and element.value is not None else ds[tag].value
        except Exception as exc:  # a deferred read can fail on a changed or vanished file
            raise InvalidImageError(f"cannot read {keyword}: {type(exc).__name__}: {exc}") from exc
        if value is None:
            raise InvalidImageError(f"the {keyword} element is empty")
        if not isinstance(value, (bytes, bytearray)):
            raise InvalidImageError(f"the {keyword} value is {type(value).__name__}, not bytes")
        return bytes(value) if isinstance(value, bytearray) else value
    raise InvalidImageError("the object has no Pixel Data, Float Pixel Data or Double Float Pixel Data")


class FragmentTable:
    """Fragment positions of encapsulated Pixel Data and the frames they make."""

    __slots__ = ("basic_offsets", "fragments")

    def __init__(self, buffer: bytes | memoryview) -> None:
        self.basic_offsets: list[int] = []
        self.fragments: list[tuple[int, int]] = []  # (start, length) of each fragment's value
        view = memoryview(buffer)
        position, end = 0, len(view)
        first = True
        while position + 8 <= end:
            tag, length = _header.unpack_from(view, position)
            position += 8
            if tag == _SEQUENCE_END:
                break
            if tag != _ITEM:
                raise InvalidImageError(
                    f"encapsulated pixel data is malformed: expected an item tag (FFFE,E000) at byte "
                    f"{position - 8}, found {tag & 0xFFFF:04X},{tag >> 16:04X}")
            if length == 0xFFFFFFFF or position + length > end:
                raise InvalidImageError(
                    f"encapsulated pixel data is truncated: an item of {length} bytes at byte "
                    f"{position - 8} runs past the end ({end} bytes)")
            if first:
                if length % 4:
                    raise InvalidImageError("the Basic Offset Table length is not a multiple of 4")
                self.basic_offsets = list(struct.unpack_from(f"<{length // 4}I", view, position))
                first = False
            else:
                self.fragments.append((position, length))
            position += length
        if first:
            raise InvalidImageError("encapsulated pixel data has no Basic Offset Table item")

    def frame_fragments(self, index: int, number_of_frames: int) -> list[tuple[int, int]] | None:
        """The fragments of frame ``index`` (0-based), or None when only the codestream can tell."""
        fragments = self.fragments
        if number_of_frames == 1:
            return fragments
        offsets = self.basic_offsets
        if len(offsets) == number_of_frames and offsets:
            # Offsets count from the first byte of the first fragment's item header.
            base = fragments[0][0] - 8 if fragments else 0
            start = base + offsets[index]
            stop = base + offsets[index + 1] if index + 1 < number_of_frames else None
            return [f for f in fragments if f[0] - 8 >= start and (stop is None or f[0] - 8 < stop)]
        if len(fragments) == number_of_frames:
            return [fragments[index]]
        return None


def _table(ds: Dataset, buffer: bytes | memoryview) -> FragmentTable:
    """The dataset's fragment table, built once per Pixel Data value."""
    owner = buffer.obj if isinstance(buffer, memoryview) else buffer
    cached: Any = ds.__dict__.get("_loadstone_fragments")
    if cached is not None and cached[0] is owner:
        table: FragmentTable = cached[1]
        return table
    table = FragmentTable(buffer)
    with _table_lock:
        ds.__dict__["_loadstone_fragments"] = (owner, table)
    return table


def encapsulated_frame(ds: Dataset, buffer: bytes | memoryview, index: int,
                       number_of_frames: int) -> bytes | memoryview:
    """The codestream of frame ``index`` (0-based) of encapsulated Pixel Data."""
    extended = ds.get("ExtendedOffsetTable")
    if extended is not None and "ExtendedOffsetTableLengths" in ds:
        return _pydicom_frame(buffer, index, number_of_frames,
                              (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths))
    table = _table(ds, buffer) if number_of_frames > 1 else FragmentTable(buffer)
    fragments = table.frame_fragments(index, number_of_frames)
    if fragments is None:
        return _pydicom_frame(buffer, index, number_of_frames, None)
    if not fragments:
        raise InvalidImageError(f"encapsulated pixel data has no fragment for frame {index + 1}")
    if len(fragments) == 1:
        start, length = fragments[0]
        return buffer[start:start + length]
    return b"".join(buffer[start:start + length] for start, length in fragments)


def _pydicom_frame(buffer: bytes | memoryview, index: int, number_of_frames: int,
                   extended: Any) -> bytes:
    """pydicom's frame finder: extended offsets, or JPEG markers when fragments are ambiguous."""
    try:
        frame = get_frame(bytes(buffer), index, extended_offsets=extended, number_of_frames=number_of_frames)
        return bytes(frame)
    except (ValueError, IndexError, KeyError, struct.error) as exc:
        raise InvalidImageError(
            f"cannot find frame {index + 1} in the encapsulated pixel data: {exc}") from exc
