"""Backend ``pydicom``: pydicom's own decoders, needing nothing but pydicom.

Native frames go through pydicom's native decoder (``Decoder.as_array``, with
its validation): the ``pydicom`` override of a native syntax, and the
benchmarks' reference.  RLE frames go through pydicom's pure-Python RLE plugin.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydicom.pixels.decoders import rle as rle_plugin
from pydicom.pixels.decoders.base import get_decoder

from loadstone import InvalidImageError

from ...dicom.description import PixelDescription
from ...dicom.syntaxes import NATIVE_SYNTAXES, RLE
from .base import FrameBytes, RawFrame, decode_with_pydicom_plugin

__all__ = ["NAME", "SYNTAXES", "CAN_CRASH", "is_available", "decode"]

NAME = "pydicom"
SYNTAXES = NATIVE_SYNTAXES | {RLE}
CAN_CRASH = False


def is_available(uid: str) -> bool:
    """Native syntaxes always; RLE as pydicom's plugin says."""
    if uid in NATIVE_SYNTAXES:
        return True
    return uid == RLE and bool(rle_plugin.is_available(uid))


def decode(src: FrameBytes, description: PixelDescription, uid: str, index: int = 0) -> RawFrame:
    """Frame ``index`` of native data, or one RLE frame (``index`` 0)."""
    if uid == RLE:
        return decode_with_pydicom_plugin(rle_plugin, NAME, src, description, uid)
    pixels = _native(src, description, uid, index)
    return RawFrame(pixels, description.photometric_interpretation, False, NAME)


def _native(buffer: FrameBytes, description: PixelDescription, uid: str, index: int) -> np.ndarray:
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
