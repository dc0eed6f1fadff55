"""Integers parsed from untrusted text (ids, query strings, headers): bounded ASCII digits only.

``str.isdigit()`` accepts ``'²'`` and ``int()`` accepts thousands of digits
(and is quadratic in them); both turn a typo or an attack into an untyped
``ValueError`` or a stall deep inside a loader.
"""

from __future__ import annotations

import re

from ..errors import InvalidImageError, LoadstoneError

__all__ = ["parse_int", "is_ascii_int"]

_DIGITS = re.compile(r"[0-9]+")  # the length is bounded by max_digits


def is_ascii_int(text: object, max_digits: int = 18) -> bool:
    """True for 1 to ``max_digits`` ASCII digits and nothing else."""
    return (isinstance(text, str) and 0 < len(text) <= max_digits and text.isascii()
            and _DIGITS.fullmatch(text) is not None)


def parse_int(text: object, what: str, *, minimum: int | None = None, maximum: int | None = None,
              error: type[LoadstoneError] = InvalidImageError, image_id: str | None = None,
              max_digits: int = 18) -> int:
    """``int(text)`` for 1 to ``max_digits`` ASCII digits within [minimum, maximum]; else ``error``.

    ``what`` names the value in the message (``"the frame number"``).
    """
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    if not isinstance(text, str):
        raise error(f"{what} must be a whole number, got {text!r}", image_id=image_id)
    stripped = text.strip()
    if not is_ascii_int(stripped, max_digits):
        shown = stripped if len(stripped) <= 40 else stripped[:40] + "…"
        raise error(f"{what} must be a whole number of at most {max_digits} ASCII digits, got {shown!r}",
                    image_id=image_id)
    value = int(stripped)
    if minimum is not None and value < minimum:
        raise error(f"{what} must be at least {minimum}, got {value}", image_id=image_id)
    if maximum is not None and value > maximum:
        raise error(f"{what} must be at most {maximum}, got {value}", image_id=image_id)
    return value
