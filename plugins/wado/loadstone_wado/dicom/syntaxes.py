"""Transfer Syntax UIDs: the ones this plugin names, which are native, and their names.

One table, so the parser, the decoders, the decode pool and the WADO-RS
client agree on what a UID means.
"""

from __future__ import annotations

from pydicom.uid import UID

__all__ = [
    "IMPLICIT_LE",
    "EXPLICIT_LE",
    "DEFLATED_LE",
    "EXPLICIT_BE",
    "JPEG_BASELINE",
    "JPEG_EXTENDED",
    "JPEG_LOSSLESS",
    "JPEG_LOSSLESS_SV1",
    "JPEG_LS_LOSSLESS",
    "JPEG_LS_NEAR",
    "J2K_LOSSLESS",
    "J2K",
    "HTJ2K_LOSSLESS",
    "HTJ2K_RPCL",
    "HTJ2K",
    "RLE",
    "NATIVE_SYNTAXES",
    "JPEG_SYNTAXES",
    "JPEG_LS_SYNTAXES",
    "J2K_SYNTAXES",
    "HTJ2K_SYNTAXES",
    "is_native",
    "syntax_name",
]

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR = "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
RLE = "1.2.840.10008.1.2.5"

#: Uncompressed syntaxes: frames are laid out in the Pixel Data value itself.
NATIVE_SYNTAXES = frozenset({IMPLICIT_LE, EXPLICIT_LE, DEFLATED_LE, EXPLICIT_BE})
#: JPEG processes 1, 2/4, 14 and 14 SV1.
JPEG_SYNTAXES = frozenset({JPEG_BASELINE, JPEG_EXTENDED, JPEG_LOSSLESS, JPEG_LOSSLESS_SV1})
JPEG_LS_SYNTAXES = frozenset({JPEG_LS_LOSSLESS, JPEG_LS_NEAR})
J2K_SYNTAXES = frozenset({J2K_LOSSLESS, J2K})
HTJ2K_SYNTAXES = frozenset({HTJ2K_LOSSLESS, HTJ2K_RPCL, HTJ2K})


def is_native(uid: str) -> bool:
    """Whether frames of this syntax are stored uncompressed."""
    return uid in NATIVE_SYNTAXES


def syntax_name(uid: str) -> str:
    """``'JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80)'``, or the bare UID."""
    name = UID(uid).name
    return f"{name} ({uid})" if name and name != uid else str(uid)
