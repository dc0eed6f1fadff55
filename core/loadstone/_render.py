"""Display rendering: modality rescale, VOI LUT function, MONOCHROME1 inversion.

The VOI formulas are those of DICOM PS3.3 C.11.2.1.2 (LINEAR, LINEAR_EXACT,
SIGMOID).  Integer data with a modest stored range goes through a lookup
table built once per call (as Cornerstone does); float data is computed
directly.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["apply_voi", "render_image"]



class Image(Protocol):
    """What rendering reads of a :class:`loadstone.Image` (a protocol: the image module imports this one)."""

    pixel_data: np.ndarray
    color: bool
    invert: bool
    slope: float
    intercept: float
    min_pixel_value: float
    max_pixel_value: float
    window_center: float | None
    window_width: float | None
    voi_lut_function: str


_LUT_MAX_ENTRIES = 1 << 17
VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


def apply_voi(
    values: np.ndarray, center: float, width: float, function: str = "LINEAR"
) -> np.ndarray:
    """Map modality values to [0, 255] floats with the named VOI LUT function."""
    function = function.upper()
    x = values.astype(np.float64, copy=False)
    if function == "LINEAR":
        width = max(float(width), 1.0)  # PS3.3 requires width >= 1
        low = center - 0.5 - (width - 1.0) / 2.0
        high = center - 0.5 + (width - 1.0) / 2.0
        if width == 1.0:
            return np.where(x <= low, 0.0, 255.0)
        y = ((x - (center - 0.5)) / (width - 1.0) + 0.5) * 255.0
        return np.asarray(np.where(x <= low, 0.0, np.where(x > high, 255.0, y)))
    if function == "LINEAR_EXACT":
        if width <= 0:
            raise ValueError("LINEAR_EXACT needs a window width above 0")
        y = ((x - center) / width + 0.5) * 255.0
        low, high = center - width / 2.0, center + width / 2.0
        return np.asarray(np.where(x <= low, 0.0, np.where(x > high, 255.0, y)))
    if function == "SIGMOID":
        if width <= 0:
            raise ValueError("SIGMOID needs a window width above 0")
        with np.errstate(over="ignore"):
            return np.asarray(255.0 / (1.0 + np.exp(-4.0 * (x - center) / width)))
    raise ValueError(f"unknown VOI LUT function {function!r}; expected one of {VOI_FUNCTIONS}")


def _default_window(image: Image) -> tuple[float, float]:
    lo = image.min_pixel_value * image.slope + image.intercept
    hi = image.max_pixel_value * image.slope + image.intercept
    lo, hi = min(lo, hi), max(lo, hi)
    return (lo + hi) / 2.0, max(hi - lo, 1.0)


def _to_uint8(levels: np.ndarray) -> np.ndarray:
    clipped: np.ndarray = np.clip(np.rint(levels), 0, 255)
    return clipped.astype(np.uint8)


def _stretch(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return _to_uint8((values.astype(np.float64) - lo) * scale)


def _render_colour(data: np.ndarray, center: float | None, width: float | None,
                   function: str) -> np.ndarray:
    """Window (or stretch) the colour channels; alpha is opacity, never windowed."""
    colour = data[..., :3]
    if center is not None and width is not None:
        out = _to_uint8(apply_voi(colour, center, width, function))
    else:
        out = _stretch(colour)
    if data.shape[-1] == 4:
        alpha = data[..., 3:]
        alpha = alpha if alpha.dtype == np.uint8 else _stretch(alpha)
        out = np.concatenate([out, alpha], axis=-1)
    return out


def render_image(
    image: Image,
    window_center: float | None = None,
    window_width: float | None = None,
    invert: bool | None = None,
    voi_lut_function: str | None = None,
) -> np.ndarray:
    """Return display-ready uint8 pixels of ``image`` (see :meth:`Image.render`)."""
    data = image.pixel_data
    invert = image.invert if invert is None else invert
    explicit_window = window_center is not None and window_width is not None
    if image.color:
        if data.dtype == np.uint8 and not explicit_window:
            return data
        return _render_colour(data, window_center if explicit_window else None, window_width,
                              (voi_lut_function or image.voi_lut_function or "LINEAR").upper())
    if window_center is None or window_width is None:
        if image.window_center is not None and image.window_width is not None:
            center, width = float(image.window_center), float(image.window_width)
        else:
            center, width = _default_window(image)
        if window_center is not None:
            center = float(window_center)
        if window_width is not None:
            width = float(window_width)
    else:
        center, width = float(window_center), float(window_width)
    function = (voi_lut_function or image.voi_lut_function or "LINEAR").upper()

    if data.dtype.kind in "iub" and not image.color and data.size:
        lo, hi = int(data.min()), int(data.max())
        if hi - lo < _LUT_MAX_ENTRIES:
            stored = np.arange(lo, hi + 1, dtype=np.float64)
            lut = _to_uint8(apply_voi(stored * image.slope + image.intercept, center, width, function))
            if invert:
                lut = 255 - lut
            if data.dtype == np.bool_:
                data = data.view(np.uint8)  # a bool array would index as a mask
            index = data.astype(np.intp, copy=False) - lo if lo else data
            return lut[index]
    modality = data.astype(np.float64) * image.slope + image.intercept
    out = _to_uint8(apply_voi(modality, center, width, function))
    return 255 - out if invert else out
