"""What every codec backend offers, and the call into pydicom's decoder plugins most of them share.

A backend is a module of :mod:`loadstone_wado.pixels.backends` (as pydicom's
``pixels/decoders/gdcm.py``, ``pillow.py``, … are) with:

``NAME``
    What ``config.decoders`` and ``image.extra["decoder"]`` call it.  Two
    modules may share a name when they decode disjoint syntaxes (the
    pylibjpeg family: libjpeg/openjpeg and rle).
``SYNTAXES``
    The Transfer Syntax UIDs it decodes.
``CAN_CRASH``
    True when bad input can crash the process (a segfault in native code),
    not just raise: such a decoder is best run where a crash costs a worker.
``is_available(uid) -> bool``
    Whether its libraries are installed for ``uid`` (cheap after the first call).
``decode(src, description, uid, index) -> RawFrame``
    Frame ``index`` of ``src`` (native data may hold every frame; a
    compressed codestream holds one, ``index`` 0) as stored values.
    Raises ``NotImplementedError`` for a kind of frame it cannot do, any
    other exception for data it cannot decode.

Compressed frames mostly go through pydicom's own plugins
(``_decode_frame(src, runner)``) with a :class:`DecodeRunner` that carries
the frame's description (:func:`decode_with_pydicom_plugin`), so every codec
quirk pydicom knows about (JPEG colour-space markers, J2K precision and
signedness, JPEG-LS interleave) is handled exactly as ``Dataset.pixel_array``
handles it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple, Protocol

import numpy as np
from pydicom.pixels.decoders.base import DecodeRunner
from pydicom.uid import UID

from ...dicom.description import PixelDescription
from ...dicom.syntaxes import HTJ2K_SYNTAXES, J2K_SYNTAXES, JPEG_LS_SYNTAXES, JPEG_SYNTAXES

__all__ = [
    "Backend",
    "FrameBytes",
    "RawFrame",
    "arrange",
    "clear_high_bits",
    "decode_with_pydicom_plugin",
]

FrameBytes = bytes | bytearray | memoryview


class RawFrame(NamedTuple):
    """A decoded frame before loadstone's post-processing."""

    pixels: np.ndarray  # (rows, columns) or (rows, columns, samples), stored dtype
    photometric_interpretation: str  # as decoded (a J2K YBR_ICT frame comes back RGB)
    signed_fixed: bool  # sign / unused-bit correction already applied
    decoder: str  # the backend's NAME


class Backend(Protocol):
    """The module interface of a codec backend (see the module docstring)."""

    __name__: str  # the module's
    NAME: str
    SYNTAXES: frozenset[str]
    CAN_CRASH: bool

    def is_available(self, uid: str) -> bool: ...

    def decode(self, src: FrameBytes, description: PixelDescription, uid: str, index: int) -> RawFrame: ...


def arrange(flat: np.ndarray, description: PixelDescription, planar: int) -> np.ndarray:
    """A flat frame as ``(rows, columns)`` or ``(rows, columns, samples)``; planar 1 is de-interleaved."""
    rows, columns, samples = description.rows, description.columns, description.samples_per_pixel
    if samples == 1:
        return flat.reshape(rows, columns)
    if planar == 0:
        return flat.reshape(rows, columns, samples)
    return np.ascontiguousarray(flat.reshape(samples, rows, columns).transpose(1, 2, 0))


def clear_high_bits(array: np.ndarray, bits: int) -> np.ndarray:
    """Keep the low ``bits`` bits of each value, sign-extending signed types (pydicom's shift pair)."""
    shift = 8 * array.dtype.itemsize - bits
    if shift:
        array = array.copy() if not array.flags.writeable else array
        np.left_shift(array, shift, out=array)
        np.right_shift(array, shift, out=array)
    return array


def _runner(uid: str, description: PixelDescription) -> Any:
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


def decode_with_pydicom_plugin(plugin: ModuleType, name: str, src: FrameBytes, description: PixelDescription,
                               uid: str) -> RawFrame:
    """One pydicom plugin through a fresh DecodeRunner; mirrors ``Decoder.as_array`` up to colour.

    ``DecodeRunner.decode`` would wrap a plugin's exception in a RuntimeError
    (logging it at ERROR level), losing whether the codec *cannot* decode this
    kind of frame (NotImplementedError) or found bad data; so the runner's two
    steps are called here: read the codestream parameters, then the plugin.
    """
    runner = _runner(uid, description)
    read_parameters = getattr(runner, "_get_frame_info", None)
    # For JPEG 1/2/4/14 the codestream parameters only serve to check the colour space of
    # 3-sample frames; J2K and JPEG-LS need them for precision and signedness.
    jpeg_grey = uid in JPEG_SYNTAXES and description.samples_per_pixel == 1
    if read_parameters is not None and not jpeg_grey:
        read_parameters(src)
    data = plugin._decode_frame(src, runner)
    decoded_dtype = runner.pixel_dtype  # the container the plugin chose (bits allocated may shrink)
    expected = description.pixels_per_frame * description.samples_per_pixel * decoded_dtype.itemsize
    if len(data) < expected:
        raise ValueError(f"the frame decoded to {len(data)} bytes, expected {expected}")
    array = np.frombuffer(data, dtype=decoded_dtype, count=expected // decoded_dtype.itemsize)
    target = description.stored_dtype
    if array.dtype != target:
        array = array.astype(target)
    array = arrange(array, description, runner.planar_configuration)
    fixed = _sign_correction(array, runner, description, uid)
    return RawFrame(array if fixed is None else fixed, str(runner.photometric_interpretation),
                    fixed is not None, name)


def _sign_correction(array: np.ndarray, runner: Any, description: PixelDescription,
                     uid: str) -> np.ndarray | None:
    """pydicom's ``_apply_sign_correction`` for J2K / JPEG-LS; None when not applicable."""
    if uid in J2K_SYNTAXES or uid in HTJ2K_SYNTAXES:
        if description.photometric_interpretation not in ("MONOCHROME1", "MONOCHROME2"):
            return None
        signed = runner.get_option("j2k_is_signed", description.pixel_representation)
        precision = runner.get_option("j2k_precision", description.bits_stored)
        if signed != description.pixel_representation:
            return clear_high_bits(array, precision)
        return array
    if uid in JPEG_LS_SYNTAXES:
        if description.pixel_representation != 1:
            return None
        return clear_high_bits(array, runner.get_option("jls_precision", description.bits_stored))
    return None
