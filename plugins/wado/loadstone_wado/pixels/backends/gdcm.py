"""Backend ``gdcm``: GDCM (python-gdcm) through pydicom's plugin.

JPEG (8-bit), JPEG lossless, JPEG-LS and JPEG 2000.  GDCM decodes a JPEG 2000
frame with several threads: the lowest latency for a lone frame on idle
cores.  It is native code with a history of crashing on malformed input.
"""

from __future__ import annotations

from pydicom.pixels.decoders import gdcm as plugin

from ...dicom.description import PixelDescription
from ...dicom.syntaxes import J2K_SYNTAXES, JPEG_LS_SYNTAXES, JPEG_SYNTAXES
from .base import FrameBytes, RawFrame, decode_with_pydicom_plugin

__all__ = ["NAME", "SYNTAXES", "CAN_CRASH", "is_available", "decode"]

NAME = "gdcm"
SYNTAXES = JPEG_SYNTAXES | JPEG_LS_SYNTAXES | J2K_SYNTAXES
CAN_CRASH = True


def is_available(uid: str) -> bool:
    """python-gdcm 3.0.10 or later is installed (pydicom's check)."""
    return uid in SYNTAXES and bool(plugin.is_available(uid))


def decode(src: FrameBytes, description: PixelDescription, uid: str, index: int = 0) -> RawFrame:
    """One compressed frame."""
    return decode_with_pydicom_plugin(plugin, NAME, src, description, uid)
