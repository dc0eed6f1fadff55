"""Backend ``pylibjpeg``: pylibjpeg-libjpeg (JPEG, JPEG-LS) and pylibjpeg-openjpeg (JPEG 2000, HTJ2K).

Through pydicom's pylibjpeg plugin; RLE, the third member of the family, is
:mod:`.pylibjpeg_rle`.  OpenJPEG spends the least CPU per JPEG 2000 frame,
in one thread: the decode pool's first choice.
"""

from __future__ import annotations

from pydicom.pixels.decoders import pylibjpeg as plugin

from ...dicom.description import PixelDescription
from ...dicom.syntaxes import HTJ2K_SYNTAXES, J2K_SYNTAXES, JPEG_LS_SYNTAXES, JPEG_SYNTAXES
from .base import FrameBytes, RawFrame, decode_with_pydicom_plugin

__all__ = ["NAME", "SYNTAXES", "CAN_CRASH", "is_available", "decode"]

NAME = "pylibjpeg"
SYNTAXES = JPEG_SYNTAXES | JPEG_LS_SYNTAXES | J2K_SYNTAXES | HTJ2K_SYNTAXES
CAN_CRASH = False


def is_available(uid: str) -> bool:
    """pylibjpeg with the plugin for ``uid`` (libjpeg or openjpeg) is installed (pydicom's check)."""
    return uid in SYNTAXES and bool(plugin.is_available(uid))


def decode(src: FrameBytes, description: PixelDescription, uid: str, index: int = 0) -> RawFrame:
    """One compressed frame."""
    return decode_with_pydicom_plugin(plugin, NAME, src, description, uid)
