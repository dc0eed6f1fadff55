"""The shape and dtype of the images behind an array, and how many go in one chunk.

Why from metadata: a lazy array must know its shape and dtype before any
pixel loads.  ``imagePixelModule`` (rows, columns, samples, bits allocated,
pixel representation, photometric interpretation) says it for the common
cases, which every loader of this repository decodes to the same numpy
types: grey 8/16/32-bit stored values as (u)int of that size, RGB/YBR colour
as unsigned (rows, columns, 3).  Anything else (1-bit, palette colour, a
plugin without metadata) returns None, and the caller loads the first image
instead.  Every chunk checks its images against the layout, so an image that
differs fails with ``InvalidImageError`` naming it, never a wrong array.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

import loadstone

__all__ = ["ImageLayout", "layout_from_metadata", "layout_of_image", "split"]

T = TypeVar("T")

_GREY = frozenset({"MONOCHROME1", "MONOCHROME2"})
_COLOUR = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"})
_BITS = frozenset({8, 16, 32})


@dataclass(frozen=True)
class ImageLayout:
    """One image as the array holds it: ``shape`` (rows, columns[, components]) and stored dtype."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    def array_dtype(self, rescale: bool) -> np.dtype[Any]:
        """The array's dtype: the stored one, or float32 modality values."""
        return np.dtype(np.float32) if rescale else self.dtype

    def nbytes(self, rescale: bool) -> int:
        """Bytes of one image in the array."""
        return int(np.prod(self.shape)) * self.array_dtype(rescale).itemsize

    def describe(self) -> str:
        """``512x512 int16`` or ``256x256x3 uint8``."""
        return f"{'x'.join(map(str, self.shape))} {self.dtype}"

    def __dask_tokenize__(self) -> tuple[tuple[int, ...], str]:
        return (self.shape, self.dtype.str)


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def layout_from_metadata(image_id: str) -> ImageLayout | None:
    """The layout ``imagePixelModule`` promises for ``image_id``, or None when it cannot tell."""
    module = loadstone.metadata.get("imagePixelModule", image_id)
    if not isinstance(module, Mapping):
        return None
    rows, columns, bits = (_positive(module.get(key)) for key in ("rows", "columns", "bits_allocated"))
    samples = _positive(module.get("samples_per_pixel") or 1)
    if rows is None or columns is None or bits is None or samples is None:
        return None
    photometric = str(module.get("photometric_interpretation") or "").upper()
    if bits not in _BITS:
        return None
    if samples == 1 and photometric in _GREY:
        signed = module.get("pixel_representation") == 1
        return ImageLayout((rows, columns), np.dtype(f"{'i' if signed else 'u'}{bits // 8}"))
    if samples == 3 and photometric in _COLOUR:
        return ImageLayout((rows, columns, 3), np.dtype(f"u{bits // 8}"))
    return None


def layout_of_image(image: loadstone.Image) -> ImageLayout:
    """The layout of a loaded image."""
    pixels = image.pixel_data
    return ImageLayout(tuple(int(n) for n in pixels.shape), pixels.dtype.newbyteorder("="))


def split(items: Sequence[T], per_chunk: int) -> list[list[T]]:
    """``items`` in runs of ``per_chunk`` (the last may be shorter)."""
    return [list(items[i:i + per_chunk]) for i in range(0, len(items), per_chunk)]
