"""A minimal PNG writer (8-bit grey, RGB, RGBA) so the core needs no Pillow."""

from __future__ import annotations

import struct
import zlib

import numpy as np

__all__ = ["encode_png"]

_COLOR_TYPES = {1: 0, 3: 2, 4: 6}


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(kind))
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc & 0xFFFFFFFF)


def encode_png(pixels: np.ndarray, compress_level: int = 6) -> bytes:
    """Encode a uint8 ``(rows, cols)`` or ``(rows, cols, 3|4)`` array as PNG."""
    array = np.ascontiguousarray(pixels)
    if array.dtype != np.uint8:
        raise ValueError(f"encode_png needs uint8 pixels, got {array.dtype}")
    if array.ndim == 2:
        channels = 1
    elif array.ndim == 3 and array.shape[2] in (3, 4):
        channels = array.shape[2]
    else:
        raise ValueError(f"encode_png needs (rows, cols) or (rows, cols, 3|4), got {array.shape}")
    rows, cols = array.shape[:2]
    raw = np.empty((rows, 1 + cols * channels), dtype=np.uint8)
    raw[:, 0] = 0  # filter type None per scanline
    raw[:, 1:] = array.reshape(rows, cols * channels)
    header = struct.pack(">IIBBBBB", cols, rows, 8, _COLOR_TYPES[channels], 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(raw.tobytes(), compress_level)),
            _chunk(b"IEND", b""),
        )
    )
