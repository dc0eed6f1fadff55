"""Backend ``pillow``: Pillow's libjpeg and OpenJPEG through pydicom's plugin.

The fastest for 8-bit JPEG baseline; JPEG 2000 when Pillow was built with it.
"""

from __future__ import annotations

from pydicom.pixels.decoders import pillow as plugin

from ...dicom.description import PixelDescription
from ...dicom.syntaxes import J2K_SYNTAXES, JPEG_BASELINE, JPEG_EXTENDED
from .base import FrameBytes, RawFrame, decode_with_pydicom_plugin

__all__ = ["NAME", "SYNTAXES", "CAN_CRASH", "is_available", "decode"]

NAME = "pillow"
SYNTAXES = frozenset({JPEG_BASELINE, JPEG_EXTENDED}) | J2K_SYNTAXES
CAN_CRASH = False


def is_available(uid: str) -> bool:
    """Pillow 10+ with the codec for ``uid`` (pydicom's check)."""
    return uid in SYNTAXES and bool(plugin.is_available(uid))


def decode(src: FrameBytes, description: PixelDescription, uid: str, index: int = 0) -> RawFrame:
    """One compressed frame."""
    return decode_with_pydicom_plugin(plugin, NAME, src, description, uid)
