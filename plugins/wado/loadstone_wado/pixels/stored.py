"""One frame's bytes to display-ready stored values: decode, clean bits, convert colour.

:func:`decode_stored` is the whole pipeline short of the palette; loader
threads and decode-pool processes (:mod:`.worker`) run it alike.  The
decoders are the backends of :mod:`.backends`, tried in the order
:func:`.order.decoder_order` gives.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from loadstone import InvalidImageError, UnsupportedError

from ..dicom.description import PixelDescription
from ..dicom.syntaxes import is_native, syntax_name
from . import backends
from .backends.base import FrameBytes, RawFrame, clear_high_bits
from .color import to_rgb
from .order import decoder_order

__all__ = ["DecodedFrame", "FrameBytes", "decode_stored", "decode_encapsulated", "correct_unused_bits",
           "min_max"]


class DecodedFrame(NamedTuple):
    """A decoded frame with what the Image needs besides the pixels."""

    pixels: np.ndarray
    photometric_interpretation: str  # "RGB" once colour was converted
    minimum: float
    maximum: float
    decoder: str
    decode_ms: float


def min_max(array: np.ndarray) -> tuple[float, float]:
    """The smallest and largest value (0, 0 for an empty array)."""
    if array.size == 0:
        return 0.0, 0.0
    return float(array.min()), float(array.max())


def decode_stored(buffer: FrameBytes, description: PixelDescription, uid: str, index: int = 0,
                  order: tuple[str, ...] | None = None) -> DecodedFrame:
    """Decode frame ``index`` of ``buffer`` (one frame, or all native frames) short of the palette.

    ``order`` is the decoder order to try (from :func:`.order.decoder_order`).
    """
    started = time.perf_counter()
    if order is None:
        order = decoder_order(uid, description)
    if is_native(uid):
        frame = backends.backend(order[0], uid).decode(buffer, description, uid, index)
    else:
        frame = decode_encapsulated(buffer, description, uid, order)
    if frame.signed_fixed:
        pixels = frame.pixels
        low, high = min_max(pixels)
    else:
        pixels, low, high = correct_unused_bits(frame.pixels, description)
    photometric, decoder = frame.photometric_interpretation, frame.decoder
    if description.samples_per_pixel > 1:
        converted, photometric_out = to_rgb(pixels, photometric)
        if converted is not pixels:
            pixels = converted
            low, high = min_max(pixels)
        photometric = photometric_out
        if photometric in ("YBR_RCT", "YBR_ICT"):
            photometric = "RGB"  # the J2K decoders undo the component transform themselves
    return DecodedFrame(pixels, photometric, low, high, decoder, (time.perf_counter() - started) * 1000.0)


def decode_encapsulated(src: FrameBytes, description: PixelDescription, uid: str,
                        order: tuple[str, ...] | None = None) -> RawFrame:
    """Decode one compressed frame (its whole codestream) with the first decoder that succeeds.

    Raises :class:`InvalidImageError` when every decoder rejects the data, and
    :class:`UnsupportedError` when none can decode this kind of frame.
    """
    if order is None:
        order = decoder_order(uid, description)
    data = bytes(src)
    if not data:
        raise InvalidImageError(f"the {syntax_name(uid)} frame is empty")
    errors: list[tuple[str, BaseException]] = []
    for name in order:
        try:
            return backends.backend(name, uid).decode(data, description, uid, 0)
        except (UnsupportedError, InvalidImageError):
            raise
        except Exception as exc:  # every codec has its own exception types
            errors.append((name, exc))
    reasons = "; ".join(f"{name}: {_first_line(exc)}" for name, exc in errors)
    raise _failure_kind(errors)(f"cannot decode the {syntax_name(uid)} frame ({reasons})")


def _failure_kind(errors: list[tuple[str, BaseException]]) -> type[InvalidImageError | UnsupportedError]:
    if errors and all(isinstance(exc, NotImplementedError) for _, exc in errors):
        return UnsupportedError
    return InvalidImageError


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    text = text.splitlines()[-1].strip() if text else type(exc).__name__
    return text[:300]


def correct_unused_bits(array: np.ndarray, description: PixelDescription) -> tuple[np.ndarray, float, float]:
    """Clear unused high bits as pydicom does, only when they are not already clean; with min/max.

    pydicom shifts left then right by ``BitsAllocated - BitsStored`` (sign
    extension for signed data, masking for unsigned).  That changes nothing
    when every value already lies in the range of ``BitsStored`` bits, which
    the min/max (needed for the Image anyway) tell in two vectorised passes.
    """
    if array.size == 0:
        return array, 0.0, 0.0
    low, high = array.min(), array.max()
    allocated, stored = description.bits_allocated, description.bits_stored
    if description.float_pixel or allocated == 1 or stored >= allocated:
        return array, float(low), float(high)
    if description.pixel_representation:
        clean = int(low) >= -(1 << (stored - 1)) and int(high) <= (1 << (stored - 1)) - 1
    else:
        clean = int(high) <= (1 << stored) - 1
    if clean:
        return array, float(low), float(high)
    fixed = array.copy() if not array.flags.writeable or not array.flags.owndata else array
    fixed = clear_high_bits(fixed, stored)
    return fixed, float(fixed.min()), float(fixed.max())
