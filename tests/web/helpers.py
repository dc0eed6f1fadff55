"""Helpers of the web plugin tests: a loopback HTTP/1.1 server and real image files.

The server is raw sockets on 127.0.0.1 (tests/loopback.py, shared with the core HTTP tests) so a
route controls every byte: it can close mid-body or stall.  Every route is a
function ``(request, connection) -> None``; ``reply(...)`` builds the common
ones.  The fixtures in conftest.py stop servers, close their sockets and
join their threads at the end of each test; every wait here is bounded.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# the loopback server: tests/loopback.py, shared with the core's HTTP tests
from loopback import Connection, Request, Server, not_found, reply, response  # noqa: F401 - re-exported
from PIL import Image as PILImage

Route = Callable[[Request, Connection], None]


# ---------------------------------------------------------------------------
# sample files
# ---------------------------------------------------------------------------


def photo(width: int = 96, height: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth RGB test picture with some noise (compresses like a photo)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 127 + 100 * np.sin(x / 11.0 + seed)
    g = 127 + 100 * np.cos(y / 7.0)
    b = 255 * (x + y) / (width + height)
    rgb = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, (height, width, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def encode(image: PILImage.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit grey PNG of ``width x height`` zeros: a few KB that decode to ``width*height`` pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@dataclass
class Images:
    files: dict[str, bytes] = field(default_factory=dict)
    content_types: dict[str, str] = field(default_factory=dict)
    folder: Path | None = None

    def add(self, name: str, data: bytes, content_type: str) -> None:
        self.files[name] = data
        self.content_types[name] = content_type


_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp",
          "bmp": "image/bmp", "tif": "image/tiff"}


def make_images() -> Images:
    images = Images()

    def add(name: str, data: bytes) -> None:
        images.add(name, data, _TYPES[name.rsplit(".", 1)[1]])

    rgb = PILImage.fromarray(photo(96, 64))
    rgba_array = np.dstack([photo(80, 48, 1), np.linspace(0, 255, 80 * 48).reshape(48, 80).astype(np.uint8)])
    grey16 = (np.arange(40 * 56, dtype=np.uint32).reshape(40, 56) * 23 % 60000 + 1000).astype(np.uint16)

    add("rgb.png", encode(rgb, "PNG"))
    add("rgb-dpi.png", encode(rgb, "PNG", dpi=(254, 127)))  # 10000 and 5000 px/m: 0.1 and 0.2 mm
    add("rgba.png", encode(PILImage.fromarray(rgba_array, "RGBA"), "PNG"))
    add("palette.png", encode(rgb.quantize(64), "PNG"))
    palette_t = rgb.quantize(16)
    add("palette-transparent.png", encode(palette_t, "PNG", transparency=3))
    add("grey.png", encode(rgb.convert("L"), "PNG"))
    add("grey-alpha.png", encode(PILImage.fromarray(rgba_array, "RGBA").convert("LA"), "PNG"))
    add("grey16.png", encode(PILImage.fromarray(grey16), "PNG"))
    add("bilevel.png", encode(rgb.convert("1"), "PNG"))

    add("baseline.jpg", encode(rgb, "JPEG", quality=90))
    add("progressive.jpg", encode(rgb, "JPEG", quality=85, progressive=True))
    add("cmyk.jpg", encode(rgb.convert("CMYK"), "JPEG", quality=90))
    add("grey.jpg", encode(rgb.convert("L"), "JPEG", quality=90))
    # JFIF density in dots per cm: 40 x 20 dots/cm -> 0.25 mm between columns, 0.5 mm between rows
    jfif = bytearray(encode(rgb, "JPEG", quality=90))
    assert jfif[6:11] == b"JFIF\x00"
    jfif[13] = 2
    jfif[14:18] = struct.pack(">HH", 40, 20)
    add("density-cm.jpg", bytes(jfif))
    for orientation in range(1, 9):
        exif = PILImage.Exif()
        exif[0x0112] = orientation
        add(f"exif-{orientation}.jpg", encode(rgb, "JPEG", quality=90, exif=exif, dpi=(254, 127)))

    frames = [PILImage.fromarray(photo(32, 24, s)).quantize(32) for s in range(3)]
    add("anim.gif", encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0))
    add("rgb.webp", encode(rgb, "WEBP", lossless=True))
    add("rgb.bmp", encode(rgb, "BMP"))
    add("grey16.tif", encode(PILImage.fromarray(grey16), "TIFF", compression="tiff_lzw"))

    # bad input
    base = images.files["baseline.jpg"]
    add("truncated.jpg", base[: len(base) * 6 // 10])
    full = images.files["rgb.png"]
    add("truncated.png", full[: len(full) * 6 // 10])
    add("bomb.png", png_bomb(12_000, 8_000))  # 96 Mpx: above Pillow's and loadstone-web's default caps
    add("small-bomb.png", png_bomb(2_000, 2_000))  # 4 Mpx of a few KB, for a lowered cap
    return images


def pillow_decode(data: bytes, convert: str | None = None, transpose: bool = False) -> np.ndarray:
    """Pillow's own decode of the same bytes (the reference the loader must equal)."""
    from PIL import ImageOps

    with PILImage.open(io.BytesIO(data)) as im:
        im.load()
        out = ImageOps.exif_transpose(im) if transpose else im
        if convert is not None:
            out = out.convert(convert)
        return np.array(out)


def open_fds() -> int:
    """Open file descriptors of this process (Linux); -1 where that is unknown."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def wait_until(predicate: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
