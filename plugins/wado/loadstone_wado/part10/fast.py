"""A lean Part 10 parser for the common case, producing exactly what pydicom's reader produces.

Loading a 512x512 slice from disk is dominated by parsing its header:
pydicom's general reader (file-like reads, meta-group checks, a Dataset
per step) takes ~130 µs for a 40-element CT header, more than decoding the
pixels.  This module walks the elements of an in-memory object with one
``struct`` call each and builds the same ``FileDataset`` of
``RawDataElement``s that :func:`pydicom.dcmread` builds — values still
converted lazily by pydicom on access, large values deferred in the same
way — in about half the time.

It handles the 128-byte preamble + ``DICM`` form in Implicit or Explicit VR
Little Endian (which includes every encapsulated syntax).  Anything else —
no preamble, big endian, deflate, an unknown VR, an undefined-length value
other than a sequence or encapsulated Pixel Data, truncation — returns
``None`` and the caller uses pydicom, so unusual files get pydicom's exact
behaviour and error messages.  Undefined-length sequences are handed to
pydicom's own ``read_sequence``.
"""

from __future__ import annotations

import struct
from typing import Any

from pydicom import config
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.filereader import read_sequence
from pydicom.tag import BaseTag
from pydicom.values import convert_string

from ..dicom.syntaxes import DEFLATED_LE, EXPLICIT_BE, IMPLICIT_LE

__all__ = ["parse"]

#: VRs with a 2-byte reserved field and a 4-byte length (PS3.5 7.1.2), and the others.
_LONG_VRS = {vr.encode(): vr for vr in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR",
                                          "UT", "UV")}
_SHORT_VRS = {vr.encode(): vr for vr in ("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO",
                                           "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US")}
_EXPLICIT_HEADER = struct.Struct("<HH2sH")
_IMPLICIT_HEADER = struct.Struct("<HHI")
_U32 = struct.Struct("<I")
_ITEM = 0xFFFEE000
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_CHARSET = 0x00080005


class _UnsupportedError(Exception):
    """This object needs pydicom's general reader."""


def _encapsulated_end(view: memoryview, position: int) -> int:
    """Offset of the Sequence Delimitation Item ending encapsulated data starting at ``position``."""
    end = len(view)
    while position + 8 <= end:
        group, element, length = _IMPLICIT_HEADER.unpack_from(view, position)
        tag = group << 16 | element
        if tag == _SEQUENCE_DELIMITER:
            return position
        if tag != _ITEM or length == 0xFFFFFFFF or position + 8 + length > end:
            raise _UnsupportedError
        position += 8 + length
    raise _UnsupportedError


def _elements(view: memoryview, reader: Any, position: int, end: int, implicit: bool,
              defer_size: int | None, meta: bool) -> tuple[dict[Any, Any], int, Any]:
    """Raw elements from ``position``; for the meta group, stop at the first non-0002 element."""

    elements: dict[Any, Any] = {}
    encoding: Any = default_encoding
    explicit_header = _EXPLICIT_HEADER.unpack_from
    implicit_header = _IMPLICIT_HEADER.unpack_from
    u32 = _U32.unpack_from
    infer_sq = config.settings.infer_sq_for_un_vr
    while position + 8 <= end:
        if implicit:
            group, element, length = implicit_header(view, position)
            vr, header = None, 8
        else:
            group, element, code, length = explicit_header(view, position)
            vr = _SHORT_VRS.get(code)
            if vr is not None:
                header = 8
            else:
                vr = _LONG_VRS.get(code)
                if vr is None:
                    raise _UnsupportedError  # an unknown VR: pydicom's heuristics decide
                if position + 12 > end:
                    raise _UnsupportedError
                length = u32(view, position + 8)[0]
                header = 12
        if meta and group != 2:
            break
        tag = group << 16 | element
        value_tell = position + header
        if length == 0xFFFFFFFF:
            # As pydicom: undefined-length UN is a sequence (infer_sq_for_un_vr); implicit VR
            # asks the dictionary, and a private tag is a sequence if an item follows.
            kind = "SQ" if vr == "UN" and infer_sq else vr
            if kind is None:
                try:
                    kind = dictionary_VR(tag)
                except KeyError:
                    kind = "SQ" if value_tell + 4 <= end and u32(view, value_tell)[0] == 0xE000FFFE else None
            if kind == "SQ":
                reader.seek(value_tell)
                sequence = read_sequence(reader, implicit, True, length, encoding)
                elements[BaseTag(tag)] = DataElement(BaseTag(tag), "SQ", sequence, value_tell,
                                                     is_undefined_length=True)
                position = reader.tell()
                continue
            if tag != _PIXEL_DATA:
                raise _UnsupportedError
            stop = _encapsulated_end(view, value_tell)
            elements[BaseTag(tag)] = RawDataElement(BaseTag(tag), vr, length, bytes(view[value_tell:stop]),
                                                    value_tell, implicit, True)
            position = stop + 8
            continue
        if value_tell + length > end:
            raise _UnsupportedError  # truncated: pydicom reports it its own way
        value: bytes | None
        if defer_size is not None and length > defer_size and tag != _CHARSET:
            value = None
        else:
            value = bytes(view[value_tell:value_tell + length])
        elements[BaseTag(tag)] = RawDataElement(BaseTag(tag), vr, length, value, value_tell, implicit, True)
        if tag == _CHARSET and value is not None:
            encoding = convert_encodings(convert_string(value, True))
        position = value_tell + length
    return elements, position, encoding


def parse(data: Any, reader: Any, defer_size: int | None) -> FileDataset | None:
    """Parse ``data`` (bytes or a mapping of a file); None when pydicom must read it instead.

    ``reader`` is a file-like over the same bytes, kept by the dataset for
    deferred reads (as pydicom keeps the file object it parsed).
    """
    view = memoryview(data).cast("B")
    end = len(view)
    if end < 132 + 8 or view[128:132].tobytes() != b"DICM":
        return None
    try:
        meta, position, _ = _elements(view, reader, 132, end, False, None, True)
        syntax_element = meta.get(0x00020010)
        if syntax_element is None or syntax_element.value is None:
            return None
        syntax = syntax_element.value.decode("ascii", "replace").strip(" \x00")
        if syntax in (EXPLICIT_BE, DEFLATED_LE) or not syntax.startswith("1.2.840.10008.1.2"):
            return None
        implicit = syntax == IMPLICIT_LE
        body, position, encoding = _elements(view, reader, position, end, implicit, defer_size, False)
        if position != end:
            return None  # trailing bytes that are no element: pydicom decides what they mean
    except (_UnsupportedError, struct.error, ValueError, KeyError, EOFError, OSError):
        return None
    file_meta = FileMetaDataset(meta)
    dataset = FileDataset(reader, body, bytes(view[:128]), file_meta, implicit, True)
    dataset.set_original_encoding(implicit, True, encoding)
    return dataset
