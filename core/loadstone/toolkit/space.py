"""Slices ordered in patient space: along the normal of their orientation, as DICOM viewers stack them.

Every series expansion (a folder of files, a WADO-RS series, a volume)
orders its slices this way, so one definition serves them all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, TypeVar

__all__ = ["SlicePosition", "slice_normal", "distance_along", "order_in_space"]

T = TypeVar("T")
Triple = tuple[float, float, float]


class SlicePosition(NamedTuple):
    """What ordering needs of one slice; ``tie`` breaks equal distances (instance number, name, frame)."""

    position: Sequence[float] | None  # Image Position (Patient), 3 numbers
    orientation: Sequence[float] | None  # Image Orientation (Patient), 6 numbers
    tie: tuple[Any, ...] = ()


def _finite(values: Sequence[float] | None, count: int) -> tuple[float, ...] | None:
    if values is None:
        return None
    try:
        numbers = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(math.isfinite(n) for n in numbers):
        return None
    return numbers


def slice_normal(orientation: Sequence[float] | None) -> Triple | None:
    """Row cosines cross column cosines, or None when the orientation is missing or degenerate."""
    cosines = _finite(orientation, 6)
    if cosines is None:
        return None
    r, c = cosines[:3], cosines[3:]
    normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    if math.sqrt(sum(n * n for n in normal)) < 1e-6:
        return None
    return normal


def distance_along(normal: Triple, position: Sequence[float] | None) -> float | None:
    """The position projected on the normal (mm), or None without a usable position."""
    point = _finite(position, 3)
    if point is None:
        return None
    return sum(p * n for p, n in zip(point, normal, strict=True))


def order_in_space(items: Iterable[T], describe: Callable[[T], SlicePosition]) -> list[T]:
    """``items`` sorted along the normal of the first oriented slice, then by ``tie``.

    Slices without a position (or a series without any orientation) keep
    their ``tie`` order after the positioned ones.
    """
    described = [(item, describe(item)) for item in items]
    normal = None
    for _, info in described:
        normal = slice_normal(info.orientation)
        if normal is not None:
            break

    def key(entry: tuple[T, SlicePosition]) -> tuple[Any, ...]:
        info = entry[1]
        distance = None if normal is None else distance_along(normal, info.position)
        if distance is None:
            return (1, 0.0, *info.tie)
        return (0, distance, *info.tie)

    return [item for item, _ in sorted(described, key=key)]
