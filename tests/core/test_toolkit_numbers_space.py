"""loadstone.toolkit numbers (bounded ASCII integers) and space (slices ordered along their normal)."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from loadstone import InvalidImageError, PolicyDeniedError
from loadstone.toolkit import (
    SlicePosition,
    distance_along,
    is_ascii_int,
    order_in_space,
    parse_int,
    slice_normal,
)


# -- numbers -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "value"), [("0", 0), ("42", 42), (" 7\t", 7), (b"12", 12), ("007", 7)])
def test_parse_int_reads_ascii_digits(text: Any, value: int) -> None:
    assert parse_int(text, "the frame number") == value


@pytest.mark.parametrize("text", ["²", "٣", "1²", "-1", "+1", "1.0", "1e3", "0x10", "1_000", "", " ", None,
                                  3])
def test_parse_int_refuses_anything_else(text: Any) -> None:
    with pytest.raises(InvalidImageError, match="the frame number must be a whole number") as caught:
        parse_int(text, "the frame number", image_id="x:1")
    assert caught.value.image_id == "x:1"


def test_parse_int_refuses_thousands_of_digits_at_once() -> None:
    started = time.perf_counter()
    with pytest.raises(InvalidImageError, match="at most 18 ASCII digits") as caught:
        parse_int("9" * 5000, "the index")
    assert time.perf_counter() - started < 0.1
    assert len(str(caught.value)) < 200  # the message shows the start only


def test_parse_int_checks_the_range_and_raises_the_error_asked_for() -> None:
    assert parse_int("5", "n", minimum=5, maximum=5) == 5
    with pytest.raises(InvalidImageError, match="n must be at least 1, got 0"):
        parse_int("0", "n", minimum=1)
    with pytest.raises(PolicyDeniedError, match="n must be at most 9, got 10"):
        parse_int("10", "n", maximum=9, error=PolicyDeniedError)


def test_max_digits_bounds_the_length_either_way() -> None:
    assert parse_int("1" * 25, "n", max_digits=30) == int("1" * 25)
    assert is_ascii_int("1" * 25, max_digits=25) and not is_ascii_int("1" * 26, max_digits=25)
    with pytest.raises(InvalidImageError):
        parse_int("123", "n", max_digits=2)
    assert is_ascii_int("12") and not is_ascii_int("1 2") and not is_ascii_int(12)


# -- space --------------------------------------------------------------------------------------
def oblique(degrees: float) -> tuple[float, ...]:
    """Row and column cosines of an axial plane turned about the x axis."""
    angle = math.radians(degrees)
    return (1.0, 0.0, 0.0, 0.0, math.cos(angle), math.sin(angle))


def test_slice_normal_and_distance() -> None:
    assert slice_normal((1, 0, 0, 0, 1, 0)) == (0.0, 0.0, 1.0)
    normal = slice_normal(oblique(30))
    assert normal is not None
    assert math.isclose(math.hypot(*normal), 1.0)
    assert distance_along((0.0, 0.0, 1.0), (5, 6, 7)) == 7.0
    for bad in (None, (1, 0, 0), (1, 0, 0, 1, 0, 0), ("a", 0, 0, 0, 1, 0), (1, 0, 0, 0, math.nan, 0)):
        assert slice_normal(bad) is None  # missing, short, degenerate (parallel), not numbers, NaN
    assert distance_along((0.0, 0.0, 1.0), None) is None
    assert distance_along((0.0, 0.0, 1.0), (1, 2)) is None


def test_oblique_slices_are_ordered_along_their_normal() -> None:
    orientation = oblique(30)
    normal = slice_normal(orientation)
    assert normal is not None
    row, column = orientation[:3], orientation[3:]

    def position(index: int) -> list[float]:
        """2.5 mm apart along the normal, and shifted within the plane (which must not matter)."""
        return [5.0 + 0.3 * index * r - 3.0 * index * c + 2.5 * index * n
                for r, c, n in zip(row, column, normal, strict=True)]

    positions = {index: position(index) for index in range(6)}
    shuffled = [3, 0, 5, 1, 4, 2]
    ordered = order_in_space(shuffled, lambda index: SlicePosition(positions[index], orientation, (index,)))
    assert ordered == [0, 1, 2, 3, 4, 5]


def test_slices_without_a_position_come_last_in_tie_order() -> None:
    axial = (1, 0, 0, 0, 1, 0)
    slices = {"top": (0, 0, 20), "middle": (0, 0, 10), "bottom": (0, 0, 0), "lost-b": None, "lost-a": None}
    ordered = order_in_space(list(slices), lambda name: SlicePosition(slices[name], axial, (name,)))
    assert ordered == ["bottom", "middle", "top", "lost-a", "lost-b"]


def test_the_first_usable_orientation_decides_the_normal() -> None:
    slices = [("a", (0, 0, 2), None), ("b", (0, 0, 1), (0, 0, 0, 0, 0, 0)),
              ("c", (0, 0, 3), (1, 0, 0, 0, 1, 0))]
    ordered = order_in_space(slices, lambda s: SlicePosition(s[1], s[2], (s[0],)))
    assert [s[0] for s in ordered] == ["b", "a", "c"]


def test_without_any_orientation_the_tie_order_stands() -> None:
    names = ["c", "a", "b"]
    assert order_in_space(names, lambda name: SlicePosition((0, 0, 1), None, (name,))) == ["a", "b", "c"]
    assert order_in_space(names, lambda name: SlicePosition(None, None)) == names  # stable
