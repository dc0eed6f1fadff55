"""One frame's bytes to a read-only array of stored values: the pixel cap, thread or pool, palette.

:func:`decode_frame_full` checks the pixel cap, decodes in this thread or in
the decode pool (:mod:`.pool`) with :func:`.stored.decode_stored`, then
applies the palette, which stays out of the pool.
"""

from __future__ import annotations

import time

import numpy as np

from loadstone import ImageLoadError, LoadstoneError

from ..dicom.description import PixelDescription
from ..dicom.syntaxes import is_native
from . import pool
from .color import apply_palette
from .limits import check_pixel_limits
from .order import decoder_order
from .stored import DecodedFrame, FrameBytes, decode_stored, min_max

__all__ = ["decode_frame", "decode_frame_full"]


def _finish(decoded: DecodedFrame, description: PixelDescription) -> DecodedFrame:
    """Apply the palette (main process only: the LUT stays out of the pool) and freeze the array."""
    pixels = decoded.pixels
    if description.photometric_interpretation == "PALETTE COLOR":
        started = time.perf_counter()
        pixels = apply_palette(pixels, description)
        low, high = min_max(pixels)
        spent = (time.perf_counter() - started) * 1000.0
        photometric = "RGBA" if pixels.shape[-1] == 4 else "RGB"
        decoded = DecodedFrame(pixels, photometric, low, high, decoded.decoder, decoded.decode_ms + spent)
    if pixels.flags.writeable:
        pixels.flags.writeable = False
    return decoded


def decode_frame_full(buffer: FrameBytes, description: PixelDescription, transfer_syntax_uid: str, *,
                      image_id: str, index: int = 0) -> DecodedFrame:
    """:func:`decode_frame` returning the :class:`DecodedFrame` (min/max, decoder, timing)."""
    try:
        check_pixel_limits(description, image_id)
        uid = str(transfer_syntax_uid)
        order = decoder_order(uid, description)
        if is_native(uid):
            decoded = decode_stored(buffer, description, uid, index, order)
        else:
            pool_order = decoder_order(uid, description, for_pool=True)
            decoded = pool.decode(buffer, description, uid, pool_order,
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
