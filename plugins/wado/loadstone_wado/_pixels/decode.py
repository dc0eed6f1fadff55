"""One frame's bytes to display-ready stored values: decode, clean bits, convert colour.

:func:`decode_stored` is the whole pipeline short of the palette, and is
what a decode-pool process runs; :func:`decode_frame` adds the pixel cap,
the choice between this thread and the decode pool, and the palette.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import numpy as np

from loadstone import ImageLoadError, InvalidImageError, LoadstoneError

from . import codecs
from .color import apply_palette, to_rgb
from .description import PixelDescription
from .limits import check_pixel_limits
from .native import correct_unused_bits, decode_native

__all__ = ["DecodedFrame", "decode_stored", "decode_frame", "decode_frame_full"]

FrameBytes = bytes | bytearray | memoryview


class DecodedFrame(NamedTuple):
    """A decoded frame with what the Image needs besides the pixels."""

    pixels: np.ndarray
    photometric_interpretation: str  # "RGB" once colour was converted
    minimum: float
    maximum: float
    decoder: str
    decode_ms: float


def _min_max(array: np.ndarray) -> tuple[float, float]:
    if array.size == 0:
        return 0.0, 0.0
    return float(array.min()), float(array.max())


def _native_with_pydicom(buffer: FrameBytes, description: PixelDescription, uid: str,
                         index: int) -> np.ndarray:
    """pydicom's own native decoder (the ``pydicom`` override; also the benchmark's reference)."""
    from pydicom.pixels import get_decoder

    options: dict[str, Any] = {
        "rows": description.rows, "columns": description.columns,
        "samples_per_pixel": description.samples_per_pixel,
        "bits_allocated": description.bits_allocated, "bits_stored": description.bits_stored,
        "pixel_representation": description.pixel_representation,
        "photometric_interpretation": description.photometric_interpretation,
        "number_of_frames": description.number_of_frames if index else 1,
        "planar_configuration": description.planar_configuration,
        "pixel_keyword": "FloatPixelData" if description.float_pixel and description.bits_allocated == 32
        else "DoubleFloatPixelData" if description.float_pixel else "PixelData",
        "as_rgb": False,
    }
    if description.pixel_data_vr:
        options["pixel_vr"] = description.pixel_data_vr
    try:
        array, _ = get_decoder(uid).as_array(bytes(buffer), index=index, validate=True, **options)
    except ValueError as exc:
        raise InvalidImageError(f"cannot decode the native pixel data: {exc}") from exc
    return np.asarray(array, dtype=array.dtype.newbyteorder("="))


def decode_stored(buffer: FrameBytes, description: PixelDescription, uid: str, index: int = 0,
                  order: tuple[str, ...] | None = None) -> DecodedFrame:
    """Decode frame ``index`` of ``buffer`` (one frame, or all native frames) short of the palette.

    Runs in loader threads and in decode-pool processes alike.  ``order`` is
    the decoder order to try (from :func:`codecs.decoder_order`).
    """
    started = time.perf_counter()
    if order is None:
        order = codecs.decoder_order(uid, description)
    if codecs.is_native(uid):
        if order[0] == "pydicom":
            raw = _native_with_pydicom(buffer, description, uid, index)
        else:
            raw = decode_native(buffer, description, uid, index)
        pixels, low, high = correct_unused_bits(raw, description)
        photometric, decoder = description.photometric_interpretation, order[0]
    else:
        frame = codecs.decode_encapsulated(buffer, description, uid, order)
        if frame.signed_fixed:
            pixels = frame.pixels
            low, high = _min_max(pixels)
        else:
            pixels, low, high = correct_unused_bits(frame.pixels, description)
        photometric, decoder = frame.photometric_interpretation, frame.decoder
    if description.samples_per_pixel > 1:
        converted, photometric_out = to_rgb(pixels, photometric)
        if converted is not pixels:
            pixels = converted
            low, high = _min_max(pixels)
        photometric = photometric_out
        if photometric in ("YBR_RCT", "YBR_ICT"):
            photometric = "RGB"  # the J2K decoders undo the component transform themselves
    return DecodedFrame(pixels, photometric, low, high, decoder, (time.perf_counter() - started) * 1000.0)


def _finish(decoded: DecodedFrame, description: PixelDescription) -> DecodedFrame:
    """Apply the palette (main process only: the LUT stays out of the pool) and freeze the array."""
    pixels = decoded.pixels
    if description.photometric_interpretation == "PALETTE COLOR":
        started = time.perf_counter()
        pixels = apply_palette(pixels, description)
        low, high = _min_max(pixels)
        spent = (time.perf_counter() - started) * 1000.0
        photometric = "RGBA" if pixels.shape[-1] == 4 else "RGB"
        decoded = DecodedFrame(pixels, photometric, low, high, decoded.decoder, decoded.decode_ms + spent)
    if pixels.flags.writeable:
        pixels.flags.writeable = False
    return decoded


def decode_frame_full(buffer: FrameBytes, description: PixelDescription, transfer_syntax_uid: str, *,
                      image_id: str, index: int = 0) -> DecodedFrame:
    """:func:`decode_frame` returning the :class:`DecodedFrame` (min/max, decoder, timing)."""
    from .. import decode_pool

    try:
        check_pixel_limits(description, image_id)
        uid = str(transfer_syntax_uid)
        order = codecs.decoder_order(uid, description)
        if codecs.is_native(uid):
            decoded = decode_stored(buffer, description, uid, index, order)
        else:
            pool_order = codecs.decoder_order(uid, description, for_pool=True)
            decoded = decode_pool.decode(buffer, description, uid, pool_order,
                                         lambda: decode_stored(buffer, description, uid, index, order))
        return _finish(decoded, description)
    except LoadstoneError as exc:
        if exc.image_id is None:
            exc.image_id = image_id
        raise
    except MemoryError as exc:
        raise ImageLoadError(f"out of memory decoding the frame: {exc}", image_id=image_id) from exc


def decode_frame(frame: FrameBytes, description: PixelDescription, transfer_syntax_uid: str, *,
                 image_id: str) -> np.ndarray:
    """One frame's encapsulated or native bytes to stored values (colour as RGB ``(rows, cols, 3)``).

    The array is read-only: images are shared through the cache.  Raises
    :class:`InvalidImageError` for bad or truncated data,
    :class:`UnsupportedError` naming the package to install when no decoder
    handles the syntax, :class:`ResourceLimitError` beyond the pixel cap.
    """
    return decode_frame_full(frame, description, transfer_syntax_uid, image_id=image_id).pixels
