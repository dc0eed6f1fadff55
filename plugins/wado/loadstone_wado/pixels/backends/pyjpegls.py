"""Backend ``pyjpegls``: CharLS through pyjpegls and pydicom's plugin; the fastest JPEG-LS decoder."""

from __future__ import annotations

from pydicom.pixels.decoders import pyjpegls as plugin

from ...dicom.description import PixelDescription
from ...dicom.syntaxes import JPEG_LS_SYNTAXES
from .base import FrameBytes, RawFrame, decode_with_pydicom_plugin

__all__ = ["NAME", "SYNTAXES", "CAN_CRASH", "is_available", "decode"]

NAME = "pyjpegls"
SYNTAXES = JPEG_LS_SYNTAXES
CAN_CRASH = False


def is_available(uid: str) -> bool:
    """pyjpegls 1.2 or later is installed (pydicom's check)."""
    return uid in SYNTAXES and bool(plugin.is_available(uid))


def decode(src: FrameBytes, description: PixelDescription, uid: str, index: int = 0) -> RawFrame:
    """One compressed frame."""
    return decode_with_pydicom_plugin(plugin, NAME, src, description, uid)
