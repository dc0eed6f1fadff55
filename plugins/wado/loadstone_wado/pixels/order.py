"""Which installed backend decodes a transfer syntax, and in which order they are tried.

What loadstone adds to the codecs is the *order*: the fastest installed
backend first, measured on this kind of machine (see
``benchmarks/bench_wado_codecs.py`` and the README); the others are
fall-backs tried when it fails.  Backends not named here (a new one) come
after the named ones, by name.  ``LOADSTONE_WADO_DECODERS`` /
``config.configure(decoders=...)`` pins one backend for a syntax instead.
"""

from __future__ import annotations

from loadstone import UnsupportedError

from ..config import get_config
from ..dicom.description import PixelDescription
from ..dicom.syntaxes import (
    HTJ2K,
    HTJ2K_LOSSLESS,
    HTJ2K_RPCL,
    J2K,
    J2K_LOSSLESS,
    JPEG_BASELINE,
    JPEG_EXTENDED,
    JPEG_LOSSLESS,
    JPEG_LOSSLESS_SV1,
    JPEG_LS_LOSSLESS,
    JPEG_LS_NEAR,
    NATIVE_SYNTAXES,
    RLE,
    syntax_name,
)
from . import backends

__all__ = [
    "PREFERENCE",
    "POOL_PREFERENCE",
    "NATIVE_PREFERENCE",
    "available_transfer_syntaxes",
    "decoder_order",
]

#: Uncompressed frames: loadstone's own numpy path (``pydicom`` only when pinned).
NATIVE_PREFERENCE = ("numpy",)
#: Decoder order per compressed syntax, fastest first, from measurements on
#: 512x512 16-bit CT and 8-bit RGB frames (README, "Decoder choice").  Only
#: installed decoders are used; the others are fallbacks tried on failure.
PREFERENCE: dict[str, tuple[str, ...]] = {
    JPEG_BASELINE: ("pillow", "gdcm", "pylibjpeg"),
    JPEG_EXTENDED: ("pillow", "gdcm", "pylibjpeg"),
    JPEG_LOSSLESS: ("gdcm", "pylibjpeg"),
    JPEG_LOSSLESS_SV1: ("gdcm", "pylibjpeg"),
    JPEG_LS_LOSSLESS: ("pyjpegls", "gdcm", "pylibjpeg"),
    JPEG_LS_NEAR: ("pyjpegls", "gdcm", "pylibjpeg"),
    J2K_LOSSLESS: ("gdcm", "pylibjpeg", "pillow"),
    J2K: ("gdcm", "pylibjpeg", "pillow"),
    HTJ2K_LOSSLESS: ("pylibjpeg",),
    HTJ2K_RPCL: ("pylibjpeg",),
    HTJ2K: ("pylibjpeg",),
    RLE: ("pylibjpeg", "pydicom"),
}
#: In decode-pool processes throughput counts, not the latency of one frame: GDCM's JPEG 2000
#: decoder runs several threads per frame (measured: 19 ms of CPU for 11.9 ms of wall time on 2
#: cores, 18.5 ms on 1), fastest for a lone frame on idle cores, while OpenJPEG (pylibjpeg) spends
#: 16 ms of CPU in one thread, the least work per frame when every core is busy decoding.
POOL_PREFERENCE: dict[str, tuple[str, ...]] = {
    J2K_LOSSLESS: ("pylibjpeg", "gdcm", "pillow"),
    J2K: ("pylibjpeg", "gdcm", "pillow"),
}

#: What to install when a syntax has no decoder here.
_INSTALL: dict[str, str] = {
    JPEG_BASELINE: "pillow, python-gdcm, or pylibjpeg with pylibjpeg-libjpeg",
    JPEG_EXTENDED: "pillow or python-gdcm (8-bit), or pylibjpeg with pylibjpeg-libjpeg (12-bit)",
    JPEG_LOSSLESS: "python-gdcm, or pylibjpeg with pylibjpeg-libjpeg",
    JPEG_LOSSLESS_SV1: "python-gdcm, or pylibjpeg with pylibjpeg-libjpeg",
    JPEG_LS_LOSSLESS: "pyjpegls, python-gdcm, or pylibjpeg with pylibjpeg-libjpeg",
    JPEG_LS_NEAR: "pyjpegls, python-gdcm, or pylibjpeg with pylibjpeg-libjpeg",
    J2K_LOSSLESS: "python-gdcm, pylibjpeg with pylibjpeg-openjpeg, or pillow",
    J2K: "python-gdcm, pylibjpeg with pylibjpeg-openjpeg, or pillow",
    HTJ2K_LOSSLESS: "pylibjpeg with pylibjpeg-openjpeg",
    HTJ2K_RPCL: "pylibjpeg with pylibjpeg-openjpeg",
    HTJ2K: "pylibjpeg with pylibjpeg-openjpeg",
    RLE: "pylibjpeg with pylibjpeg-rle (pydicom's own RLE decoder is built in)",
}


def decoder_order(uid: str, description: PixelDescription | None = None,
                  for_pool: bool = False) -> tuple[str, ...]:
    """Installed decoders for ``uid`` in the order they are tried (override first and only).

    ``for_pool``: the order for decode-pool processes (:data:`POOL_PREFERENCE`).
    Raises :class:`UnsupportedError` naming what to install when there is none.
    """
    override = get_config().decoders.get(uid)
    installed = backends.names(uid)
    if uid in NATIVE_SYNTAXES:
        if override is not None and override not in installed:
            raise UnsupportedError(f"the decoder {override!r} configured for {syntax_name(uid)} is not "
                                   f"one of {', '.join(installed)}")
        return (override,) if override else NATIVE_PREFERENCE
    if uid not in backends.syntaxes():
        raise UnsupportedError(f"the transfer syntax {syntax_name(uid)} is not supported by loadstone-wado "
                               "(no pixel decoder handles it)")
    if override is not None:
        if override not in installed:
            shown = ", ".join(installed) or "none"
            raise UnsupportedError(f"the decoder {override!r} configured for {syntax_name(uid)} is not "
                                   f"available (available: {shown})")
        return (override,)
    preferred = POOL_PREFERENCE.get(uid, PREFERENCE.get(uid, ())) if for_pool else PREFERENCE.get(uid, ())
    order = tuple(name for name in preferred if name in installed)
    order += tuple(name for name in installed if name not in order)
    if description is not None and uid == JPEG_EXTENDED and description.bits_stored > 8:
        # gdcm and pillow decode only 8-bit JPEG Extended; 12-bit needs libjpeg.
        order = tuple(name for name in order if name == "pylibjpeg")
        if not order:
            raise UnsupportedError(
                f"{syntax_name(uid)} with {description.bits_stored}-bit samples needs pylibjpeg with "
                "pylibjpeg-libjpeg (pip install pylibjpeg pylibjpeg-libjpeg); gdcm and pillow decode "
                "only 8-bit JPEG Extended")
    if not order:
        raise UnsupportedError(f"no installed decoder handles {syntax_name(uid)}; install "
                               f"{_INSTALL.get(uid, 'a pydicom decoding plugin')} "
                               "(or loadstone-wado[all])")
    return order


def available_transfer_syntaxes() -> dict[str, str]:
    """Transfer Syntax UID -> decoder used (``"pyjpegls (then gdcm)"``) for every decodable syntax."""
    result = {uid: "loadstone (numpy)" for uid in sorted(NATIVE_SYNTAXES)}
    others = sorted(backends.syntaxes() - NATIVE_SYNTAXES - PREFERENCE.keys())
    for uid in [*PREFERENCE, *others]:
        try:
            order = decoder_order(uid)
        except UnsupportedError:
            continue
        first, rest = order[0], order[1:]
        result[uid] = first + (f" (then {', '.join(rest)})" if rest else "")
        if uid == JPEG_EXTENDED and "pylibjpeg" not in order:
            result[uid] += "; 8-bit only, 12-bit needs pylibjpeg-libjpeg"
    return result
