"""Which decoder handles which transfer syntax, and the call into it.

Compressed frames go through pydicom's decoder plugins (gdcm, pylibjpeg,
pyjpegls, pillow, pydicom's own RLE): each plugin's documented entry point
``_decode_frame(src, runner)`` is called with a :class:`DecodeRunner` that
carries the frame's description, so every codec quirk pydicom knows about
(JPEG colour-space markers, J2K precision and signedness, JPEG-LS interleave)
is handled exactly as ``Dataset.pixel_array`` handles it.  What loadstone
adds is the *order*: the fastest installed plugin first, measured on this
kind of machine (see ``benchmarks/bench_wado_codecs.py`` and the README),
and a direct call into pylibjpeg-rle, where the runner's overhead would be
half the decode time.

``LOADSTONE_WADO_DECODERS`` / ``config.configure(decoders=...)`` pins one
plugin for a syntax instead.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from loadstone import InvalidImageError, UnsupportedError

from .description import PixelDescription

__all__ = [
    "NATIVE_SYNTAXES",
    "ENCAPSULATED_SYNTAXES",
    "PREFERENCE",
    "RawFrame",
    "available_transfer_syntaxes",
    "decoder_order",
    "decode_encapsulated",
    "syntax_name",
    "is_native",
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

#: Uncompressed syntaxes: frames are decoded by loadstone's own numpy path.
NATIVE_SYNTAXES = frozenset({IMPLICIT_LE, EXPLICIT_LE, DEFLATED_LE, EXPLICIT_BE})

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
ENCAPSULATED_SYNTAXES = frozenset(PREFERENCE)
_JPEG_SYNTAXES = frozenset({JPEG_BASELINE, JPEG_EXTENDED, JPEG_LOSSLESS, JPEG_LOSSLESS_SV1})

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

_PLUGIN_MODULES = {
    "gdcm": "pydicom.pixels.decoders.gdcm",
    "pylibjpeg": "pydicom.pixels.decoders.pylibjpeg",
    "pyjpegls": "pydicom.pixels.decoders.pyjpegls",
    "pillow": "pydicom.pixels.decoders.pillow",
    "pydicom": "pydicom.pixels.decoders.rle",
}
_NATIVE_DECODERS = ("numpy", "pydicom")

DecodeFunction = Callable[[bytes, Any], "bytes | bytearray"]


def syntax_name(uid: str) -> str:
    """``'JPEG-LS Lossless Image Compression (1.2.840.10008.1.2.4.80)'``, or the bare UID."""
    from pydicom.uid import UID

    name = UID(uid).name
    return f"{name} ({uid})" if name and name != uid else str(uid)


def is_native(uid: str) -> bool:
    """Whether frames of this syntax are stored uncompressed."""
    return uid in NATIVE_SYNTAXES


@functools.cache
def _installed_plugins(uid: str) -> tuple[str, ...]:
    """pydicom's available plugin names for ``uid`` (cached: the check imports codecs)."""
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        return ()
    return tuple(decoder.available_plugins)


@functools.cache
def _plugin_function(name: str) -> DecodeFunction:
    module = importlib.import_module(_PLUGIN_MODULES[name])
    func: DecodeFunction = module._decode_frame
    return func


def decoder_order(uid: str, description: PixelDescription | None = None,
                  for_pool: bool = False) -> tuple[str, ...]:
    """Installed decoders for ``uid`` in the order they are tried (override first and only).

    ``for_pool``: the order for decode-pool processes (:data:`POOL_PREFERENCE`).
    Raises :class:`UnsupportedError` naming what to install when there is none.
    """
    from ..config import get_config

    override = get_config().decoders.get(uid)
    if uid in NATIVE_SYNTAXES:
        if override is not None and override not in _NATIVE_DECODERS:
            raise UnsupportedError(f"the decoder {override!r} configured for {syntax_name(uid)} is not "
                                   f"one of {', '.join(_NATIVE_DECODERS)}")
        return (override,) if override else _NATIVE_DECODERS[:1]
    if uid not in PREFERENCE:
        raise UnsupportedError(f"the transfer syntax {syntax_name(uid)} is not supported by loadstone-wado "
                               "(no pixel decoder handles it)")
    installed = _installed_plugins(uid)
    if override is not None:
        if override not in installed:
            shown = ", ".join(installed) or "none"
            raise UnsupportedError(f"the decoder {override!r} configured for {syntax_name(uid)} is not "
                                   f"available (available: {shown})")
        return (override,)
    preferred = POOL_PREFERENCE.get(uid, PREFERENCE[uid]) if for_pool else PREFERENCE[uid]
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
    for uid in PREFERENCE:
        try:
            order = decoder_order(uid)
        except UnsupportedError:
            continue
        first, rest = order[0], order[1:]
        result[uid] = first + (f" (then {', '.join(rest)})" if rest else "")
        if uid == JPEG_EXTENDED and "pylibjpeg" not in order:
            result[uid] += "; 8-bit only, 12-bit needs pylibjpeg-libjpeg"
    return result


class RawFrame(NamedTuple):
    """A decoded frame before loadstone's post-processing."""

    pixels: np.ndarray  # (rows, columns) or (rows, columns, samples), stored dtype
    photometric_interpretation: str  # as decoded (a J2K YBR_ICT frame comes back RGB)
    signed_fixed: bool  # sign / unused-bit correction already applied
    decoder: str  # the plugin that decoded it


def _runner(uid: str, description: PixelDescription) -> Any:
    from pydicom.pixels.decoders.base import DecodeRunner
    from pydicom.uid import UID

    runner = DecodeRunner(UID(uid))
    options: dict[str, Any] = {
        "rows": description.rows,
        "columns": description.columns,
        "samples_per_pixel": description.samples_per_pixel,
        "bits_allocated": description.bits_allocated,
        "bits_stored": description.bits_stored,
        "pixel_representation": description.pixel_representation,
        "photometric_interpretation": description.photometric_interpretation,
        "number_of_frames": 1,
    }
    if description.samples_per_pixel > 1:
        options["planar_configuration"] = description.planar_configuration
    runner.set_options(**options)
    return runner


def _shape(description: PixelDescription, planar: int, array: np.ndarray) -> np.ndarray:
    rows, columns, samples = description.rows, description.columns, description.samples_per_pixel
    if samples == 1:
        return array.reshape(rows, columns)
    if planar == 0:
        return array.reshape(rows, columns, samples)
    return np.ascontiguousarray(array.reshape(samples, rows, columns).transpose(1, 2, 0))


def _decode_rle_direct(src: bytes, description: PixelDescription) -> RawFrame:
    """pylibjpeg-rle without the runner: the codec takes ~0.2 ms, the runner would add half."""
    from rle import rle as rle_codec

    pixels = description.rows * description.columns
    data = rle_codec.decode_frame(src, pixels, description.bits_allocated, "<")
    dtype = description.stored_dtype.newbyteorder("<")
    expected = pixels * description.samples_per_pixel * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"the RLE frame decoded to {len(data)} bytes, expected {expected}")
    array = np.frombuffer(data, dtype=dtype)
    # pylibjpeg-rle returns samples colour-by-plane.
    return RawFrame(_shape(description, 1, array), description.photometric_interpretation, False, "pylibjpeg")


def _decode_with_plugin(name: str, uid: str, src: bytes, description: PixelDescription) -> RawFrame:
    """One plugin through a fresh DecodeRunner; mirrors ``Decoder.as_array`` up to colour processing.

    ``DecodeRunner.decode`` would wrap a plugin's exception in a RuntimeError
    (logging it at ERROR level), losing whether the codec *cannot* decode this
    kind of frame (NotImplementedError) or found bad data; so the runner's two
    steps are called here: read the codestream parameters, then the plugin.
    """
    runner = _runner(uid, description)
    read_parameters = getattr(runner, "_get_frame_info", None)
    # For JPEG 1/2/4/14 the codestream parameters only serve to check the colour space of
    # 3-sample frames; J2K and JPEG-LS need them for precision and signedness.
    jpeg_grey = uid in _JPEG_SYNTAXES and description.samples_per_pixel == 1
    if read_parameters is not None and not jpeg_grey:
        read_parameters(src)
    data = _plugin_function(name)(src, runner)
    decoded_dtype = runner.pixel_dtype  # the container the plugin chose (bits allocated may shrink)
    expected = description.pixels_per_frame * description.samples_per_pixel * decoded_dtype.itemsize
    if len(data) < expected:
        raise ValueError(f"the frame decoded to {len(data)} bytes, expected {expected}")
    array = np.frombuffer(data, dtype=decoded_dtype, count=expected // decoded_dtype.itemsize)
    target = description.stored_dtype
    if array.dtype != target:
        array = array.astype(target)
    array = _shape(description, runner.planar_configuration, array)
    fixed = _sign_correction(array, runner, description, uid)
    return RawFrame(array if fixed is None else fixed, str(runner.photometric_interpretation),
                    fixed is not None, name)


def _sign_correction(array: np.ndarray, runner: Any, description: PixelDescription,
                     uid: str) -> np.ndarray | None:
    """pydicom's ``_apply_sign_correction`` for J2K / JPEG-LS; None when not applicable."""
    if uid in (J2K_LOSSLESS, J2K, HTJ2K_LOSSLESS, HTJ2K_RPCL, HTJ2K):
        if description.photometric_interpretation not in ("MONOCHROME1", "MONOCHROME2"):
            return None
        signed = runner.get_option("j2k_is_signed", description.pixel_representation)
        precision = runner.get_option("j2k_precision", description.bits_stored)
        shift = 8 * array.dtype.itemsize - precision
        if shift and signed != description.pixel_representation:
            array = array.copy() if not array.flags.writeable else array
            np.left_shift(array, shift, out=array)
            np.right_shift(array, shift, out=array)
        return array
    if uid in (JPEG_LS_LOSSLESS, JPEG_LS_NEAR):
        if description.pixel_representation != 1:
            return None
        precision = runner.get_option("jls_precision", description.bits_stored)
        shift = 8 * array.dtype.itemsize - precision
        if shift:
            array = array.copy() if not array.flags.writeable else array
            np.left_shift(array, shift, out=array)
            np.right_shift(array, shift, out=array)
        return array
    return None


def _failure_kind(errors: list[tuple[str, BaseException]]) -> type[InvalidImageError | UnsupportedError]:
    if errors and all(isinstance(exc, NotImplementedError) for _, exc in errors):
        return UnsupportedError
    return InvalidImageError


def decode_encapsulated(src: bytes | bytearray | memoryview, description: PixelDescription, uid: str,
                        order: tuple[str, ...] | None = None) -> RawFrame:
    """Decode one compressed frame (its whole codestream) with the first decoder that succeeds.

    Raises :class:`InvalidImageError` when every decoder rejects the data, and
    :class:`UnsupportedError` when none can decode this kind of frame.
    """
    if order is None:
        order = decoder_order(uid, description)
    data = bytes(src)
    if not data:
        raise InvalidImageError(f"the {syntax_name(uid)} frame is empty")
    errors: list[tuple[str, BaseException]] = []
    for name in order:
        try:
            if name == "pylibjpeg" and uid == RLE and description.bits_allocated > 1:
                return _decode_rle_direct(data, description)
            return _decode_with_plugin(name, uid, data, description)
        except (UnsupportedError, InvalidImageError):
            raise
        except Exception as exc:  # every codec has its own exception types
            errors.append((name, exc))
    reasons = "; ".join(f"{name}: {_first_line(exc)}" for name, exc in errors)
    raise _failure_kind(errors)(f"cannot decode the {syntax_name(uid)} frame ({reasons})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    text = text.splitlines()[-1].strip() if text else type(exc).__name__
    return text[:300]
