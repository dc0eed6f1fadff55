"""Read the few DICOM JSON values the network half needs itself (PS3.18 F.2).

Why not W1's :mod:`.metadata`: ordering a series and counting frames must
work on any server's JSON without building whole modules, and must never
fail on an odd value — a missing or unreadable value reads as ``default``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "first_value",
    "values",
    "number",
    "numbers",
    "text",
    "SOP_INSTANCE_UID",
    "NUMBER_OF_FRAMES",
    "INSTANCE_NUMBER",
    "IMAGE_POSITION",
    "IMAGE_ORIENTATION",
    "PHOTOMETRIC",
    "TRANSFER_SYNTAX",
]

SOP_INSTANCE_UID = "00080018"
NUMBER_OF_FRAMES = "00280008"
INSTANCE_NUMBER = "00200013"
IMAGE_POSITION = "00200032"
IMAGE_ORIENTATION = "00200037"
PHOTOMETRIC = "00280004"
TRANSFER_SYNTAX = "00020010"


def values(attrs: Mapping[str, Any], tag: str) -> list[Any]:
    """The ``Value`` list of ``tag`` (``[]`` when absent or empty)."""
    element = attrs.get(tag) or attrs.get(tag.lower())
    if not isinstance(element, Mapping):
        return []
    value = element.get("Value")
    return list(value) if isinstance(value, list) else []


def first_value(attrs: Mapping[str, Any], tag: str, default: Any = None) -> Any:
    """The first value of ``tag``, else ``default``."""
    found = values(attrs, tag)
    return found[0] if found else default


def text(attrs: Mapping[str, Any], tag: str, default: str | None = None) -> str | None:
    """The first value as a stripped string, else ``default``."""
    value = first_value(attrs, tag)
    if value is None or isinstance(value, (Mapping, list)):
        return default
    result = str(value).strip()
    return result or default


def number(attrs: Mapping[str, Any], tag: str, default: float | None = None) -> float | None:
    """The first value as a finite float (IS/DS may come as strings), else ``default``."""
    found = numbers(attrs, tag)
    return found[0] if found else default


def numbers(attrs: Mapping[str, Any], tag: str) -> list[float]:
    """Every value as a finite float; ``[]`` if any is unreadable."""
    result: list[float] = []
    for value in values(attrs, tag):
        try:
            converted = float(value)
        except (TypeError, ValueError):
            return []
        if not math.isfinite(converted):
            return []
        result.append(converted)
    return result
