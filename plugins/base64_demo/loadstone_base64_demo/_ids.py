"""Parsing of ``example:`` image ids and series ids.

Grammar: ``example://<series>/<index>`` for an image and ``example://<series>``
(optionally with a trailing ``/``) for a series.  The scheme and the series
name are matched case-insensitively (the series sits where a URL's host does);
the index is a plain decimal number without sign or leading zeros, so each
image has exactly one canonical id up to case.
"""

from __future__ import annotations

import re

from loadstone import InvalidImageError

from ._series import SERIES, SeriesSpec

__all__ = ["SCHEME", "is_example_id", "parse_image_id", "parse_series_id"]

SCHEME = "example"

_IMAGE_ID = re.compile(r"example://(?P<series>[^/?#]*)/(?P<index>[^/?#]*)", re.IGNORECASE)
_SERIES_ID = re.compile(r"example://(?P<series>[^/?#]+)/?", re.IGNORECASE)
_INDEX = re.compile(r"0|[1-9][0-9]*")


def is_example_id(image_id: object) -> bool:
    """True when the id's scheme (text before the first ``:``) is ``example``."""
    if not isinstance(image_id, str):
        return False
    scheme, sep, _ = image_id.partition(":")
    return bool(sep) and scheme.lower() == SCHEME


def parse_image_id(image_id: str) -> tuple[SeriesSpec, int]:
    """The series and slice index an image id names.

    Raises :class:`loadstone.InvalidImageError` (carrying the id) for a
    malformed id, an unknown series or an index out of range, so a caller
    never sees a bare ``KeyError`` or ``IndexError``.
    """
    if not isinstance(image_id, str):
        raise InvalidImageError(f"image id must be a string, not {type(image_id).__name__}")
    match = _IMAGE_ID.fullmatch(image_id)
    if match is None or not match["index"]:
        series = parse_series_id(image_id)
        if series is not None:
            raise InvalidImageError(
                f"{image_id!r} is a series id, not an image id: get its {series.slices} image ids with "
                f"loadstone.series_image_ids({image_id!r}) (on the command line: loadstone fetch --series "
                f"{image_id} -o DIR), or load one slice, e.g. {series.image_id(0)!r}",
                image_id=image_id,
            )
    if match is None:
        raise InvalidImageError(
            "malformed demo image id; expected example://<series>/<index>, e.g. example://ct/0",
            image_id=image_id,
        )
    spec = SERIES.get(match["series"].lower())
    if spec is None:
        raise InvalidImageError(
            f"unknown demo series {match['series']!r}; available: {', '.join(SERIES)}",
            image_id=image_id,
        )
    text = match["index"]
    if not _INDEX.fullmatch(text):
        raise InvalidImageError(
            f"slice index must be a decimal number without sign or leading zeros, got {text!r}",
            image_id=image_id,
        )
    # Length first: int() of a huge digit string is slow or refused outright.
    index = int(text) if len(text) <= 9 else spec.slices
    if index >= spec.slices:
        raise InvalidImageError(
            f"slice index {text} out of range: series {spec.series_id!r} has "
            f"{spec.slices} slice(s), 0..{spec.slices - 1}",
            image_id=image_id,
        )
    return spec, index


def parse_series_id(series_id: object) -> SeriesSpec | None:
    """The series a series id names, or None if it is not a demo series id."""
    if not isinstance(series_id, str):
        return None
    match = _SERIES_ID.fullmatch(series_id)
    if match is None:
        return None
    return SERIES.get(match["series"].lower())

