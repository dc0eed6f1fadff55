"""The embedded pixel data: base64 text of zlib-compressed little-endian arrays.

Each series is one file in the package's ``_data`` folder.  It is decoded
once, on first use, into a read-only array kept for the life of the process
(the whole demo is under 4 MB decoded); every load then copies one slice out.

Why copy rather than hand out read-only views: every other loader returns an
Image whose ``pixel_data`` the caller owns and may modify, and code written
against one loader should not break on another.  A slice is at most 192 KiB,
so the copy costs microseconds, and the shared volume stays read-only, so no
caller can corrupt what later loads see.
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from importlib import resources

import numpy as np

from loadstone import InvalidImageError
from loadstone.toolkit import SingleFlight

from ._series import SeriesSpec

__all__ = ["clear", "decode", "encode", "read_slice", "read_volume"]

_PACKAGE = __name__.rpartition(".")[0]
_volumes: dict[str, np.ndarray] = {}
_decodes: SingleFlight[str, np.ndarray] = SingleFlight()


def encode(array: np.ndarray, spec: SeriesSpec) -> bytes:
    """The data file text for ``array`` (used by the generator; the inverse of :func:`decode`)."""
    if tuple(array.shape) != spec.shape:
        raise ValueError(f"{spec.name}: expected shape {spec.shape}, got {array.shape}")
    raw = np.ascontiguousarray(array, dtype=np.dtype(spec.dtype)).tobytes()
    return base64.encodebytes(zlib.compress(raw, 9))


def decode(text: bytes, spec: SeriesSpec) -> np.ndarray:
    """Decode a data file into a read-only native-endian array of ``spec.shape``."""
    try:
        raw = zlib.decompress(base64.b64decode(b"".join(text.split()), validate=True))
    except (binascii.Error, zlib.error, ValueError) as exc:
        raise InvalidImageError(f"demo data file {spec.data_file!r} is corrupt: {exc}") from exc
    dtype = np.dtype(spec.dtype)
    expected = math.prod(spec.shape) * dtype.itemsize
    if len(raw) != expected:
        raise InvalidImageError(
            f"demo data file {spec.data_file!r} holds {len(raw)} bytes, expected {expected} "
            f"for shape {spec.shape} of {dtype}"
        )
    array = np.frombuffer(raw, dtype=dtype).reshape(spec.shape)
    array = array.astype(dtype.newbyteorder("="), copy=False)  # no copy on little-endian hosts
    array.flags.writeable = False
    return array


def _read_text(spec: SeriesSpec) -> bytes:
    try:
        return (resources.files(_PACKAGE) / "_data" / spec.data_file).read_bytes()
    except OSError as exc:
        raise InvalidImageError(
            f"demo data file {spec.data_file!r} is missing from the installed package "
            f"(reinstall loadstone-base64-demo): {exc}"
        ) from exc


def read_volume(spec: SeriesSpec) -> np.ndarray:
    """The whole decoded series, read-only; decoded once per process, thread-safely.

    Concurrent first loads of a series share one decode (each waits on its
    own terms: its cancel or deadline ends its wait, not the decode).
    """
    volume = _volumes.get(spec.name)
    if volume is None:
        volume = _decodes.do(spec.name, lambda: _decode_once(spec))
    return volume


def _decode_once(spec: SeriesSpec) -> np.ndarray:
    volume = _volumes.get(spec.name)  # stored by a decode that ended a moment ago
    if volume is None:
        volume = _volumes[spec.name] = decode(_read_text(spec), spec)
    return volume


def read_slice(spec: SeriesSpec, index: int) -> np.ndarray:
    """A writable copy of slice ``index`` (see the module docstring for why a copy)."""
    return np.array(read_volume(spec)[index], copy=True)


def clear() -> None:
    """Forget the decoded volumes (they are decoded again on next use)."""
    _volumes.clear()
