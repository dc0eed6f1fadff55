"""One read-only view of DICOM attributes over a pydicom Dataset or a DICOM JSON object.

The pixel description and the metadata modules are written once against
this view, so a Part 10 header and a DICOM JSON answer give identical results.
Values come out as plain Python: ``int``/``float``/``str`` for one value,
lists for several, ``None`` when absent or empty.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from ._pixels.description import PaletteLUT

__all__ = ["Attributes", "DatasetAttributes", "JsonAttributes", "frame_value", "frame_item"]

_PIXEL_TAGS = {0x7FE00010: "PixelData", 0x7FE00008: "FloatPixelData", 0x7FE00009: "DoubleFloatPixelData"}
_JSON_PIXEL_TAGS = {"7FE00010": "PixelData", "7FE00008": "FloatPixelData", "7FE00009": "DoubleFloatPixelData"}


class Attributes(Protocol):
    """What the pixel description and the metadata modules read."""

    def get(self, keyword: str) -> Any: ...
    def sequence(self, keyword: str) -> list[Attributes]: ...
    def functional_groups(self) -> tuple[list[Attributes], list[Attributes]]: ...
    def pixel_keyword(self) -> str | None: ...
    def pixel_vr(self) -> str | None: ...
    def palette(self) -> PaletteLUT | None: ...


def _plain(value: Any) -> Any:
    """pydicom value types (MultiValue, DSfloat, IS, PersonName, UID) as plain Python."""
    from pydicom.multival import MultiValue
    from pydicom.valuerep import DSfloat, PersonName

    if value is None:
        return None
    if isinstance(value, (MultiValue, list, tuple)):
        items = [_plain(item) for item in value]
        return items or None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (float, DSfloat)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, PersonName):
        return str(value) or None
    if isinstance(value, str):
        text = str(value).strip()
        return text or None
    return value


@functools.cache
def _tag_int(keyword: str) -> int | None:
    from pydicom.datadict import tag_for_keyword

    return tag_for_keyword(keyword)


@functools.cache
def _dictionary_vr(tag: int) -> str | None:
    from pydicom.datadict import dictionary_VR

    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


_BINARY_VRS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}
_ASCII_VRS = frozenset({"CS", "UI", "DA", "TM", "DT", "AS", "AE"})
_MISSING = object()


def _number_text(text: str, integer: bool) -> Any:
    text = text.strip(" \x00")
    if not text:
        return None
    try:
        return int(text) if integer else float(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            return text  # kept as text so an error message can show it
        if integer:
            return int(number) if number.is_integer() else text
        return number


def _raw_value(raw: Any) -> Any:
    """Convert a RawDataElement of a simple VR without pydicom's conversion machinery.

    pydicom converts an element on first access through hooks and value
    classes, about 9 µs each; a Part 10 header read for one image needs a
    dozen of them, which would double the cost of loading a small slice.
    Binary numbers, IS/DS and ASCII-only string VRs are decoded here; anything
    else (character sets, sequences, ambiguous VRs) returns ``_MISSING`` so the
    caller falls back to pydicom.
    """
    vr = raw.VR or _dictionary_vr(raw.tag)
    value = raw.value
    if value is None:
        return None
    if not isinstance(value, bytes):
        return _MISSING
    if not value:
        return None
    code = _BINARY_VRS.get(vr) if vr else None
    if code is not None:
        size = struct.calcsize(code)
        count = len(value) // size
        if count == 0:
            return None
        numbers = struct.unpack(f"{'<' if raw.is_little_endian else '>'}{count}{code}", value[:count * size])
        if code in "fd":
            floats = [n if math.isfinite(n) else None for n in numbers]
            return floats[0] if count == 1 else floats
        return numbers[0] if count == 1 else list(numbers)
    if vr in ("IS", "DS"):
        items = [_number_text(part, vr == "IS") for part in value.decode("ascii", "replace").split("\\")]
        items = [item for item in items if item is not None]
        if not items:
            return None
        return items[0] if len(items) == 1 else items
    if vr in _ASCII_VRS:
        parts = [part.strip(" \x00") for part in value.decode("ascii", "replace").split("\\")]
        parts = [part for part in parts if part]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else parts
    return _MISSING


class DatasetAttributes:
    """:class:`Attributes` over a pydicom Dataset (or a sequence item)."""

    __slots__ = ("ds", "_elements", "_groups")

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        # pydicom keeps elements in ``Dataset._dict`` (tag -> raw or converted element);
        # reading it directly skips ``get_item``'s Tag() conversion on this hot path.
        elements = getattr(ds, "_dict", None)
        self._elements: Any = elements if isinstance(elements, dict) else None
        self._groups: tuple[list[Attributes], list[Attributes]] | None = None

    def _element(self, tag: int) -> Any:
        if self._elements is not None:
            return self._elements.get(tag)
        try:
            return self.ds.get_item(tag)
        except (KeyError, ValueError, TypeError):
            return None

    def functional_groups(self) -> tuple[list[Attributes], list[Attributes]]:
        """(Per-Frame items, Shared items), looked up once per wrapper."""
        if self._groups is None:
            self._groups = (self.sequence("PerFrameFunctionalGroupsSequence"),
                            self.sequence("SharedFunctionalGroupsSequence"))
        return self._groups

    def get(self, keyword: str) -> Any:
        tag = _tag_int(keyword)
        if tag is None:
            return None
        element = self._element(tag)
        if element is None:
            return None
        if getattr(element, "is_raw", False):
            value = _raw_value(element)
            if value is not _MISSING:
                return value
        try:
            return _plain(self.ds[tag].value)
        except (KeyError, ValueError, TypeError, OverflowError):
            return None

    def raw_text(self, keyword: str) -> str | None:
        """The value as text even when it does not convert (for error messages)."""
        try:
            return str(self.ds[keyword].value)
        except Exception:
            return None

    def sequence(self, keyword: str) -> list[Attributes]:
        tag = _tag_int(keyword)
        if tag is None or self._element(tag) is None:
            return []
        try:
            value = self.ds[tag].value
        except (KeyError, ValueError, TypeError):
            return []
        if not isinstance(value, (list, tuple)) and type(value).__name__ != "Sequence":
            return []
        return [DatasetAttributes(item) for item in value]

    def pixel_keyword(self) -> str | None:
        for tag, keyword in _PIXEL_TAGS.items():
            if self._element(tag) is not None:
                return keyword
        return None

    def pixel_vr(self) -> str | None:
        for tag in _PIXEL_TAGS:
            element = self._element(tag)
            if element is not None:
                return str(element.VR) if element.VR else _dictionary_vr(tag)
        return None

    def palette(self) -> PaletteLUT | None:
        from ._pixels.description import PaletteLUT

        if "RedPaletteColorLookupTableDescriptor" not in self.ds:
            return None
        return PaletteLUT.from_dataset(self.ds)


def _tag_of(keyword: str) -> str | None:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    return None if tag is None else f"{tag:08X}"


class JsonAttributes:
    """:class:`Attributes` over a DICOM JSON object (PS3.18 F.2)."""

    __slots__ = ("attrs", "_groups")

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        if not isinstance(attrs, Mapping):
            raise TypeError(f"DICOM JSON must be a mapping of tag to attribute, got {type(attrs).__name__}")
        self.attrs = attrs
        self._groups: tuple[list[Attributes], list[Attributes]] | None = None

    def functional_groups(self) -> tuple[list[Attributes], list[Attributes]]:
        """(Per-Frame items, Shared items), looked up once per wrapper."""
        if self._groups is None:
            self._groups = (self.sequence("PerFrameFunctionalGroupsSequence"),
                            self.sequence("SharedFunctionalGroupsSequence"))
        return self._groups

    def _entry(self, keyword: str) -> Mapping[str, Any] | None:
        tag = _tag_of(keyword)
        if tag is None:
            return None
        entry = self.attrs.get(tag)
        if entry is None:
            entry = self.attrs.get(tag.lower())
        return entry if isinstance(entry, Mapping) else None

    def get(self, keyword: str) -> Any:
        entry = self._entry(keyword)
        if entry is None:
            return None
        values = entry.get("Value")
        if not isinstance(values, list) or not values:
            return None
        vr = entry.get("vr")
        items = [_json_value(item, vr) for item in values]
        items = [item for item in items if item is not None]
        if not items:
            return None
        return items[0] if len(items) == 1 else items

    def sequence(self, keyword: str) -> list[Attributes]:
        entry = self._entry(keyword)
        values = entry.get("Value") if entry else None
        if not isinstance(values, list):
            return []
        return [JsonAttributes(item) for item in values if isinstance(item, Mapping)]

    def pixel_keyword(self) -> str | None:
        for tag, keyword in _JSON_PIXEL_TAGS.items():
            if tag in self.attrs or tag.lower() in self.attrs:
                return keyword
        return None

    def pixel_vr(self) -> str | None:
        for tag in _JSON_PIXEL_TAGS:
            entry = self.attrs.get(tag)
            if isinstance(entry, Mapping) and isinstance(entry.get("vr"), str):
                return str(entry["vr"])
        return None

    def palette(self) -> PaletteLUT | None:
        """The palette when its LUT data is inline; None when it is only bulk data."""
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian

        from ._pixels.description import PaletteLUT, decode_inline_binary

        descriptor = self.get("RedPaletteColorLookupTableDescriptor")
        if not isinstance(descriptor, list) or len(descriptor) != 3:
            return None
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PixelRepresentation = int(self.get("PixelRepresentation") or 0)
        for colour in ("Red", "Green", "Blue"):
            setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [int(v) for v in descriptor])
            for prefix in ("", "Segmented"):
                keyword = f"{prefix}{colour}PaletteColorLookupTableData"
                entry = self._entry(keyword)
                data = decode_inline_binary(entry.get("InlineBinary")) if entry else None
                if data is not None:
                    setattr(ds, keyword, data)
        if "RedPaletteColorLookupTableData" not in ds and "SegmentedRedPaletteColorLookupTableData" not in ds:
            return None
        return PaletteLUT.from_dataset(ds)


def _json_value(item: Any, vr: Any) -> Any:
    if item is None:
        return None
    if vr == "PN":
        if isinstance(item, Mapping):
            return item.get("Alphabetic") or item.get("Ideographic") or item.get("Phonetic") or None
        return str(item) or None
    if vr in ("DS", "FL", "FD"):
        try:
            number = float(item)
        except (TypeError, ValueError):
            return None
        return number if math.isfinite(number) else None
    if vr in ("IS", "SL", "SS", "UL", "US", "SV", "UV"):
        try:
            return int(item)
        except (TypeError, ValueError):
            try:
                number = float(item)
            except (TypeError, ValueError):
                return str(item)
            return int(number) if number.is_integer() else str(item)
    if isinstance(item, str):
        return item.strip() or None
    return item


def frame_item(source: Attributes, frame: int | None, group: str) -> Attributes | None:
    """The functional-group item ``group`` for ``frame`` (per-frame first, then shared)."""
    per_frame, shared = source.functional_groups()
    if frame is not None and frame >= 1 and len(per_frame) >= frame:
        items = per_frame[frame - 1].sequence(group)
        if items:
            return items[0]
    if shared:
        items = shared[0].sequence(group)
        if items:
            return items[0]
    return None


def frame_value(source: Attributes, frame: int | None, group: str, keyword: str) -> Any:
    """``keyword`` from the frame's functional group ``group``, else from the top level."""
    item = frame_item(source, frame, group)
    if item is not None:
        value = item.get(keyword)
        if value is not None:
            return value
    return source.get(keyword)
