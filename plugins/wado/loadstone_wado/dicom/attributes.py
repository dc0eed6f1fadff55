"""One read-only view of DICOM attributes over a pydicom Dataset or a DICOM JSON object.

The pixel description, the metadata modules, series ordering and the
WADO-RS client all read attributes through :class:`Attributes`, so a Part 10
header and a DICOM JSON answer (PS3.18 F.2) give identical results.  Values
come out as plain Python: ``int``/``float``/``str`` for one value, lists for
several, ``None`` when absent or empty.  The typed readers (:meth:`~Attributes.text`,
:meth:`~Attributes.number`, :meth:`~Attributes.numbers`) never fail on an odd
value: an unreadable value reads as the default.
"""

from __future__ import annotations

import base64
import functools
import math
import struct
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian
from pydicom.valuerep import DSfloat, PersonName

__all__ = [
    "Attributes",
    "DatasetAttributes",
    "FileAttributes",
    "JsonAttributes",
    "frame_item",
    "frame_value",
    "json_tag",
    "decode_inline_binary",
]

_PIXEL_TAGS = {0x7FE00010: "PixelData", 0x7FE00008: "FloatPixelData", 0x7FE00009: "DoubleFloatPixelData"}
_PALETTE_DESCRIPTOR = "RedPaletteColorLookupTableDescriptor"


class Attributes(ABC):
    """What the pixel description, the metadata modules and the WADO client read."""

    __slots__ = ("_groups",)

    def __init__(self) -> None:
        self._groups: tuple[list[Attributes], list[Attributes]] | None = None

    # -- what each source answers ----------------------------------------------
    @abstractmethod
    def get(self, keyword: str) -> Any:
        """The value of ``keyword`` as plain Python, or None."""

    @abstractmethod
    def sequence(self, keyword: str) -> list[Attributes]:
        """The items of a sequence (``[]`` when absent)."""

    @abstractmethod
    def pixel_keyword(self) -> str | None:
        """``PixelData``, ``FloatPixelData`` or ``DoubleFloatPixelData``: whichever is present."""

    @abstractmethod
    def pixel_vr(self) -> str | None:
        """The VR of the pixel data element, when known."""

    @abstractmethod
    def palette_dataset(self) -> Dataset | None:
        """A dataset holding the Palette Color Lookup Table elements, or None when they are absent."""

    # -- shared ----------------------------------------------------------------
    def functional_groups(self) -> tuple[list[Attributes], list[Attributes]]:
        """(Per-Frame items, Shared items), looked up once per view."""
        if self._groups is None:
            self._groups = (self.sequence("PerFrameFunctionalGroupsSequence"),
                            self.sequence("SharedFunctionalGroupsSequence"))
        return self._groups

    def text(self, keyword: str, default: str | None = None) -> str | None:
        """The first value as a stripped string, else ``default``."""
        value = self.get(keyword)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is None or isinstance(value, (Mapping, list)):
            return default
        result = str(value).strip()
        return result or default

    def numbers(self, keyword: str) -> list[float]:
        """Every value as a finite float; ``[]`` if any is unreadable."""
        value = self.get(keyword)
        if value is None:
            return []
        result: list[float] = []
        for item in value if isinstance(value, list) else [value]:
            try:
                number = float(item)
            except (TypeError, ValueError):
                return []
            if not math.isfinite(number):
                return []
            result.append(number)
        return result

    def number(self, keyword: str, default: float | None = None) -> float | None:
        """The first value as a finite float (IS/DS may be text), else ``default``."""
        found = self.numbers(keyword)
        return found[0] if found else default

    def number_of_frames(self) -> int:
        """(0028,0008) Number of Frames, 1 when absent or unreadable."""
        return max(1, int(self.number("NumberOfFrames", 1.0) or 1.0))


def _plain(value: Any) -> Any:
    """pydicom value types (MultiValue, DSfloat, IS, PersonName, UID) as plain Python."""
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
    tag: int | None = tag_for_keyword(keyword)
    return tag


@functools.cache
def json_tag(keyword: str) -> str | None:
    """The DICOM JSON key of ``keyword`` (``"00280010"`` for Rows), or None when unknown."""
    tag = _tag_int(keyword)
    return None if tag is None else f"{tag:08X}"


@functools.cache
def _dictionary_vr(tag: int) -> str | None:
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
        return _integer_or_text(text) if integer else _float_or_text(text)


def _float_or_text(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text  # kept as text so an error message can show it


def _integer_or_text(item: Any) -> Any:
    """An integral number as int (``"2.0"`` too), anything else as text."""
    try:
        number = float(item)
    except (TypeError, ValueError):
        return str(item)
    return int(number) if number.is_integer() else str(item)


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


class DatasetAttributes(Attributes):
    """:class:`Attributes` over a pydicom Dataset (or a sequence item)."""

    __slots__ = ("ds", "_elements")

    def __init__(self, ds: Dataset) -> None:
        super().__init__()
        self.ds = ds
        # pydicom keeps elements in ``Dataset._dict`` (tag -> raw or converted element);
        # reading it directly skips ``get_item``'s Tag() conversion on this hot path.
        elements = getattr(ds, "_dict", None)
        self._elements: Any = elements if isinstance(elements, dict) else None

    def _element(self, tag: int) -> Any:
        if self._elements is not None:
            return self._elements.get(tag)
        try:
            return self.ds.get_item(tag)
        except (KeyError, ValueError, TypeError):
            return None

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

    def palette_dataset(self) -> Dataset | None:
        return self.ds if _PALETTE_DESCRIPTOR in self.ds else None


class FileAttributes(DatasetAttributes):
    """A Part 10 dataset whose file meta keywords (the transfer syntax) answer too."""

    __slots__ = ("meta",)

    def __init__(self, ds: Dataset) -> None:
        super().__init__(ds)
        meta = getattr(ds, "file_meta", None)
        self.meta = DatasetAttributes(meta) if meta is not None else None

    def get(self, keyword: str) -> Any:
        if keyword.startswith(("TransferSyntax", "MediaStorage", "ImplementationClass")):
            return self.meta.get(keyword) if self.meta is not None else None
        return super().get(keyword)


class JsonAttributes(Attributes):
    """:class:`Attributes` over a DICOM JSON object (PS3.18 F.2)."""

    __slots__ = ("attrs",)

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        if not isinstance(attrs, Mapping):
            raise TypeError(f"DICOM JSON must be a mapping of tag to attribute, got {type(attrs).__name__}")
        super().__init__()
        self.attrs = attrs

    def _entry(self, keyword: str) -> Mapping[str, Any] | None:
        tag = json_tag(keyword)
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
        for tag, keyword in _PIXEL_TAGS.items():
            key = f"{tag:08X}"
            if key in self.attrs or key.lower() in self.attrs:
                return keyword
        return None

    def pixel_vr(self) -> str | None:
        for tag in _PIXEL_TAGS:
            entry = self.attrs.get(f"{tag:08X}")
            if isinstance(entry, Mapping) and isinstance(entry.get("vr"), str):
                return str(entry["vr"])
        return None

    def palette_dataset(self) -> Dataset | None:
        """The palette elements when the LUT data is inline; None when it is only bulk data."""
        descriptor = self.get(_PALETTE_DESCRIPTOR)
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
        return ds


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
            return _integer_or_text(item)
    if isinstance(item, str):
        return item.strip() or None
    return item


def decode_inline_binary(value: Any) -> bytes | None:
    """Bytes of a DICOM JSON ``InlineBinary`` (base64) value, or None."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=False)
        except ValueError:
            return None
    return None


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
