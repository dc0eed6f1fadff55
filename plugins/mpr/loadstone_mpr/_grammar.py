"""The ``mpr:`` image id grammar (documented in the plugin's README)::

    mpr:<plane>[;<key>=<value>]*;series=<any series id, verbatim to the end>
    mpr:<plane>[;<key>=<value>]*;volume=<id given to create_volume, verbatim to the end>

The source comes last so that ids which contain ``?``, ``&``, ``;`` or ``=``
(a ``wadors:`` URL, a ``dicomfile:`` folder, another ``mpr:`` id) need no
escaping.  Every other key is checked: an unknown or repeated key, or one that
does not apply to the plane, is an :class:`~loadstone.InvalidImageError`,
because a typo silently ignored would show the wrong plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from loadstone import InvalidImageError
from loadstone.toolkit import did_you_mean

__all__ = [
    "SCHEME",
    "GRAMMAR",
    "PLANES",
    "AXIS_PLANES",
    "MODES",
    "Source",
    "MprSpec",
    "is_mpr_id",
    "parse_mpr_id",
    "with_index",
]

SCHEME = "mpr"
AXIS_PLANES = ("axial", "sagittal", "coronal")
PLANES = (*AXIS_PLANES, "oblique")
MODES = {"mip": "mip", "max": "mip", "minip": "minip", "min": "minip",
         "mean": "mean", "avg": "mean", "average": "mean"}
INTERPOLATIONS = ("linear", "nearest")
_SOURCE_KEYS = ("series", "volume")
_AXIS_ONLY = ("index", "position")
_OBLIQUE_ONLY = ("normal", "up", "point")
_KEYS = frozenset((*_AXIS_ONLY, *_OBLIQUE_ONLY, "size", "spacing", "slab", "mode", "interp"))


@dataclass(frozen=True)
class Source:
    """Where the volume comes from: a series id, or a volume id from ``create_volume``."""

    kind: str  # "series" | "volume"
    id: str

    @property
    def key(self) -> str:
        """Identity of the volume, e.g. ``series=example://ct``; the cache key adds a prefix."""
        return f"{self.kind}={self.id}"


Vector = tuple[float, float, float]


@dataclass(frozen=True)
class MprSpec:
    """One parsed ``mpr:`` id: which plane of which volume, sampled how."""

    plane: str
    source: Source
    index: int | None = None
    position: float | None = None
    normal: Vector | None = None
    up: Vector | None = None
    point: Vector | None = None
    size: tuple[int, int] | None = None  # (columns, rows)
    spacing: tuple[float, float] | None = None  # (between rows, between columns), as DICOM
    slab: float = 0.0
    mode: str = "mip"
    interp: str = "linear"

    @property
    def is_axis_plane(self) -> bool:
        """True for axial, sagittal and coronal planes."""
        return self.plane in AXIS_PLANES


def is_mpr_id(image_id: object) -> bool:
    """True when the id's scheme is ``mpr`` (any case)."""
    return (isinstance(image_id, str) and len(image_id) > 4 and image_id[3] == ":"
            and image_id[:3].lower() == SCHEME)


#: What every bad id is told: the grammar, in one line.
GRAMMAR = ("mpr ids read mpr:<plane>[;<key>=<value>]*;series=<series id> (or ;volume=<volume id>), "
           "the source last; planes: axial, sagittal, coronal, oblique; keys: index, position, normal, up, "
           "point, size, spacing, slab, mode, interp (loadstone-mpr's README: 'Image id grammar')")


def _fail(image_id: str, why: str) -> InvalidImageError:
    return InvalidImageError(f"bad mpr id: {why}. {GRAMMAR}", image_id=image_id)


def _number(image_id: str, key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _fail(image_id, f"{key}={text!r} is not a number") from None
    if not math.isfinite(value):
        raise _fail(image_id, f"{key}={text!r} is not a finite number")
    return value


def _vector(image_id: str, key: str, text: str) -> Vector:
    parts = text.split(",")
    if len(parts) != 3:
        raise _fail(image_id, f"{key}={text!r} needs three comma-separated numbers (x,y,z in mm, LPS)")
    x, y, z = (_number(image_id, key, part) for part in parts)
    return (x, y, z)


def _size(image_id: str, text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise _fail(image_id, f"size={text!r} must be <columns>x<rows> or <n>, e.g. 256x256")
    columns, rows = (int(part) if len(part) <= 9 else 10**9 for part in parts)
    if columns < 1 or rows < 1:
        raise _fail(image_id, f"size={text!r} must be at least 1x1")
    return columns, rows


def _spacing(image_id: str, text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) not in (1, 2):
        raise _fail(image_id, f"spacing={text!r} must be <mm> or <between rows>,<between columns>")
    values = [_number(image_id, "spacing", part) for part in parts]
    if any(value <= 0 for value in values):
        raise _fail(image_id, f"spacing={text!r} must be above 0")
    return (values[0], values[-1])


def _split(image_id: str) -> tuple[str, list[tuple[str, str]], Source]:
    """Plane token, the key/value pairs before the source, and the source."""
    body = image_id[4:]
    plane, sep, rest = body.partition(";")
    if not sep:
        raise _fail(image_id, "no source; end the id with ;series=<series id> or ;volume=<volume id>")
    pairs: list[tuple[str, str]] = []
    while True:
        key, eq, after = rest.partition("=")
        if ";" in key or not eq:
            token = rest.partition(";")[0]
            raise _fail(image_id, f"{token!r} is not key=value")
        key = key.strip().lower()
        if key in _SOURCE_KEYS:
            if not after:
                raise _fail(image_id, f"{key}= is empty")
            return plane, pairs, Source(key, after)
        value, sep, rest = after.partition(";")
        if not sep:
            raise _fail(image_id, "no source; end the id with ;series=<series id> or ;volume=<volume id>")
        pairs.append((key, value.strip()))


def parse_mpr_id(image_id: str) -> MprSpec:
    """Parse an ``mpr:`` id; raises :class:`~loadstone.InvalidImageError` naming what is wrong."""
    if not is_mpr_id(image_id):
        raise InvalidImageError(f"not an mpr id: {image_id!r}", image_id=str(image_id))
    plane_token, pairs, source = _split(image_id)
    plane = plane_token.strip().lower()
    if plane not in PLANES:
        raise _fail(image_id, f"unknown plane {plane_token!r}{did_you_mean(plane, PLANES)}")
    if source.kind == "series" and source.id.find(":") <= 0:
        raise _fail(image_id, f"series={source.id!r} is not an id of the form scheme:...")
    fields: dict[str, object] = {}
    seen: set[str] = set()
    for key, text in pairs:
        if key not in _KEYS:
            raise _fail(image_id, f"unknown key {key!r}{did_you_mean(key, _KEYS | set(_SOURCE_KEYS))}")
        if key in seen:
            raise _fail(image_id, f"key {key!r} given twice")
        seen.add(key)
        if not text:
            raise _fail(image_id, f"{key}= is empty")
        if key in _AXIS_ONLY and plane == "oblique":
            raise _fail(image_id, f"{key}= applies to axial, sagittal and coronal planes; "
                                  "place an oblique plane with point=")
        if key in _OBLIQUE_ONLY and plane != "oblique":
            raise _fail(image_id, f"{key}= applies to oblique planes; use index= or position= for {plane}")
        if key == "index":
            if not text.isdigit():
                raise _fail(image_id, f"index={text!r} must be a whole number >= 0")
            fields["index"] = int(text) if len(text) <= 9 else 10**9
        elif key == "position":
            fields["position"] = _number(image_id, key, text)
        elif key in _OBLIQUE_ONLY:
            fields[key] = _vector(image_id, key, text)
        elif key == "size":
            fields["size"] = _size(image_id, text)
        elif key == "spacing":
            fields["spacing"] = _spacing(image_id, text)
        elif key == "slab":
            slab = _number(image_id, key, text)
            if slab < 0:
                raise _fail(image_id, f"slab={text!r} must be >= 0 mm")
            fields["slab"] = slab
        elif key == "mode":
            mode = MODES.get(text.lower())
            if mode is None:
                raise _fail(image_id, f"mode={text!r}; expected mip, minip or mean")
            fields["mode"] = mode
        elif key == "interp":
            interp = text.lower()
            if interp not in INTERPOLATIONS:
                raise _fail(image_id, f"interp={text!r}; expected linear or nearest")
            fields["interp"] = interp
    if "index" in fields and "position" in fields:
        raise _fail(image_id, "give index= or position=, not both")
    if plane == "oblique" and "normal" not in fields:
        raise _fail(image_id, "an oblique plane needs normal=<x,y,z>")
    return MprSpec(plane=plane, source=source, **fields)  # type: ignore[arg-type]


def with_index(image_id: str, index: int) -> str:
    """The id of plane ``index`` of the stack an axis-plane id (without index/position) names.

    The index goes right after the plane, everything else stays as written.
    """
    plane, sep, rest = image_id[4:].partition(";")
    return f"{image_id[:4]}{plane};index={int(index)}{sep}{rest}"
