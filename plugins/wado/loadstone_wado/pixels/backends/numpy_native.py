"""Backend ``numpy``: uncompressed frames with numpy, a view where possible, one pass where not.

pydicom's native decoder validates, copies into a fresh array, then shifts
every value to clear unused bits.  For the common frame (little endian, the
unused high bits already a sign extension) that is three passes for nothing:
here the frame is a zero-copy view, and the min/max that the Image needs
anyway tell whether the unused bits hold garbage; only then are they
cleared, exactly as pydicom clears them.  Big-endian data, 1-bit packing,
YBR_FULL_422 subsampling and planar configuration 1 are handled as pydicom
handles them (``benchmarks/bench_wado_files.py`` measures the difference).
"""

from __future__ import annotations

import math

import numpy as np

from loadstone import InvalidImageError

from ...dicom.description import PixelDescription
from ...dicom.syntaxes import EXPLICIT_BE, NATIVE_SYNTAXES
from .base import FrameBytes, RawFrame, arrange

__all__ = ["NAME", "SYNTAXES", "CAN_CRASH", "is_available", "decode", "decode_native", "native_frame_length"]

NAME = "numpy"
SYNTAXES = NATIVE_SYNTAXES
CAN_CRASH = False


def is_available(uid: str) -> bool:
    """numpy is always there."""
    return uid in SYNTAXES


def decode(src: FrameBytes, description: PixelDescription, uid: str, index: int = 0) -> RawFrame:
    """Frame ``index`` of native pixel data; unused bits not yet checked, YBR not yet converted."""
    pixels = decode_native(src, description, uid, index)
    return RawFrame(pixels, description.photometric_interpretation, False, NAME)


def native_frame_length(description: PixelDescription) -> float:
    """Bytes of one stored frame (fractional for bit-packed data)."""
    pixels = description.rows * description.columns
    if description.bits_allocated == 1:
        return pixels * description.samples_per_pixel / 8
    if description.photometric_interpretation == "YBR_FULL_422" and description.samples_per_pixel == 3:
        return pixels * 2 * description.bytes_per_sample
    return pixels * description.samples_per_pixel * description.bytes_per_sample


def _truncated(description: PixelDescription, index: int, needed: int, have: int) -> InvalidImageError:
    return InvalidImageError(
        f"the pixel data is truncated: frame {index + 1} of {description.number_of_frames} needs bytes "
        f"up to {needed} but only {have} are present")


def decode_native(buffer: FrameBytes, description: PixelDescription, uid: str,
                  index: int = 0) -> np.ndarray:
    """Stored values of frame ``index`` (0-based) of native pixel data in ``buffer``.

    ``buffer`` is either one frame or the whole Pixel Data value.  Returns
    ``(rows, columns)`` or ``(rows, columns, samples)`` in native byte order,
    unused bits *not yet* checked (see :func:`loadstone_wado.pixels.stored.correct_unused_bits`), YBR not
    yet converted.  The array may be a read-only view of ``buffer``.
    """
    rows, columns, samples = description.rows, description.columns, description.samples_per_pixel
    pixels = rows * columns
    view = memoryview(buffer).cast("B") if not isinstance(buffer, bytes) else buffer
    have = len(view)

    if description.bits_allocated == 1:
        count = pixels * samples
        first_bit = index * count
        start, end = first_bit // 8, math.ceil((first_bit + count) / 8)
        if end > have:
            raise _truncated(description, index, end, have)
        packed = np.frombuffer(view, dtype=np.uint8, count=end - start, offset=start)
        bits = np.unpackbits(packed, bitorder="little")
        offset = first_bit - start * 8
        flat = bits[offset:offset + count]
        return arrange(flat, description, 0)

    dtype = description.stored_dtype
    big_endian = uid == EXPLICIT_BE
    length = int(native_frame_length(description))
    start = index * length
    end = start + length
    if end > have:
        raise _truncated(description, index, end, have)

    if big_endian and dtype.itemsize == 1 and description.pixel_data_vr == "OW":
        # 8-bit data in an OW element of a big-endian dataset: bytes swapped in pairs (PS3.5 8.1.1).
        first = start - (start % 2)
        last = min(end + (end % 2), have - (have % 2))
        words = np.frombuffer(view, dtype=">u2", count=(last - first) // 2, offset=first)
        swapped = words.byteswap().view(np.uint8)
        flat = swapped[start - first:start - first + length]
        if flat.size < length:
            raise _truncated(description, index, end, have)
    else:
        stored = dtype.newbyteorder(">") if big_endian and dtype.itemsize > 1 else dtype
        flat = np.frombuffer(view, dtype=stored, count=length // dtype.itemsize, offset=start)
        if stored != dtype:
            flat = flat.astype(dtype)  # byte swap to native order: one pass

    if description.photometric_interpretation == "YBR_FULL_422" and samples == 3:
        flat = _expand_ybr_422(flat)
    return arrange(flat, description, description.planar_configuration)


def _expand_ybr_422(flat: np.ndarray) -> np.ndarray:
    """Y1 Y2 Cb Cr -> Y1 Cb Cr Y2 Cb Cr (PS3.3 C.7.6.3.1.2), as pydicom does."""
    out = np.empty(flat.shape[0] // 2 * 3, dtype=flat.dtype)
    out[::6] = flat[::4]
    out[3::6] = flat[1::4]
    out[1::6] = flat[2::4]
    out[4::6] = flat[2::4]
    out[2::6] = flat[3::4]
    out[5::6] = flat[3::4]
    return out
