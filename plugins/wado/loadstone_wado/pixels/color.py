"""Colour: YCbCr to RGB and palette lookup, matching pydicom's ``pixel_array``.

loadstone images are grey or RGB; ``Image.photometric_interpretation`` says
``"RGB"`` for every colour image delivered as RGB (see the README).  YBR
conversion uses pydicom's own :func:`convert_color_space` so the result is
identical to ``Dataset.pixel_array`` (which converts YBR_FULL and
YBR_FULL_422 by default).
"""

from __future__ import annotations

import numpy as np
from pydicom.pixels.processing import convert_color_space

from loadstone import InvalidImageError, UnsupportedError

from ..dicom.description import PixelDescription

__all__ = ["to_rgb", "apply_palette"]

_YBR = ("YBR_FULL", "YBR_FULL_422")


def to_rgb(array: np.ndarray, photometric: str) -> tuple[np.ndarray, str]:
    """Convert a decoded colour frame to RGB where pydicom would; returns (array, photometric)."""
    if photometric in _YBR:
        if not array.flags.writeable:
            array = array.copy()
        return convert_color_space(array, "YBR_FULL", "RGB"), "RGB"
    if photometric == "YBR_PARTIAL_420":
        raise UnsupportedError("YBR_PARTIAL_420 colour is only defined inside MPEG streams; not supported")
    return array, photometric


def apply_palette(array: np.ndarray, description: PixelDescription) -> np.ndarray:
    """Map PALETTE COLOR indices to RGB(A) through the description's LUT."""
    palette = description.palette
    if palette is None:
        raise UnsupportedError(
            "PALETTE COLOR pixels need the Palette Color Lookup Table data, which this object's "
            "metadata does not carry inline (fetch the bulk data and set PixelDescription.palette)")
    if array.ndim != 2:
        raise InvalidImageError(f"PALETTE COLOR pixels must be one sample per pixel, got shape {array.shape}")
    return palette.apply(array)
