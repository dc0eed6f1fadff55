"""Helpers of the web plugin tests: a loopback HTTP/1.1 server and real image files.

The server is raw sockets on 127.0.0.1 (as in tests/core/test_http.py) so a
route controls every byte: it can close mid-body or stall.  Every route is a
function ``(request, connection) -> None``; ``reply(...)`` builds the common
ones.  The fixtures in conftest.py stop servers, close their sockets and
join their threads at the end of each test; every wait here is bounded.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

# ---------------------------------------------------------------------------
# the loopback server
# ---------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


class Connection:
    """The server side of one accepted connection."""

    def __init__(self, sock: socket.socket, server: Server) -> None:
        self.sock = sock
        self.server = server
        self.buf = bytearray()
        self.keep_open = True
        sock.settimeout(0.05)

    def _recv(self) -> bytes | None:
        """One recv: b"" at EOF (or error), None on timeout."""
        try:
            return self.sock.recv(65536)
        except TimeoutError:
            return None
        except OSError:
            return b""

    def read_request(self) -> Request | None:
        while b"\r\n\r\n" not in self.buf:
            if self.server.stopping.is_set():
                return None
            data = self._recv()
            if data is None:
                continue
            if not data:
                return None
            self.buf += data
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)  # GET requests carry no body
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Request(method, path, headers)

    def send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(data)

    def stall(self, seconds: float = 20.0) -> bool:
        """Send nothing more until the client closes (True) or ``seconds`` pass / the server stops."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.server.stopping.is_set():
            if self._recv() == b"":
                self.server.peer_closed.set()
                return True
        return False

    def close(self) -> None:
        """Close after this response (the client sees the connection end)."""
        self.keep_open = False


Route = Callable[[Request, Connection], None]


class Server:
    """A threaded HTTP/1.1 server on 127.0.0.1 whose paths are routes."""

    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.peer_closed = threading.Event()
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.accepted = 0
        self.open_connections = 0
        self.threads: list[threading.Thread] = []
        self.accept_thread = threading.Thread(target=self._accept, name="web-test-accept", daemon=True)
        self.accept_thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def route(self, path: str, handler: Route) -> str:
        self.routes[path] = handler
        return self.url(path)

    def requests_for(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(sock,), name="web-test-conn", daemon=True)
            with self.lock:
                self.accepted += 1
                self.open_connections += 1
                self.threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        conn = Connection(sock, self)
        try:
            while conn.keep_open and not self.stopping.is_set():
                req = conn.read_request()
                if req is None:
                    break
                with self.lock:
                    self.requests.append(req)
                handler = self.routes.get(req.path.split("?", 1)[0], not_found)
                handler(req, conn)
                if req.headers.get("connection", "").lower() == "close":
                    break
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            with self.lock:
                self.open_connections -= 1

    def stop(self) -> None:
        self.stopping.set()
        self.accept_thread.join(5)
        self.listener.close()
        with self.lock:
            threads = list(self.threads)
        for thread in threads:
            thread.join(5)
        assert not any(t.is_alive() for t in threads), "server thread leaked"


def response(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None,
             reason: str = "OK") -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\n"
    all_headers = {"Content-Length": str(len(body)), **(headers or {})}
    for name, value in all_headers.items():
        head += f"{name}: {value}\r\n"
    return head.encode("latin-1") + b"\r\n" + body


def reply(body: bytes, content_type: str | None = "application/octet-stream", status: int = 200,
          reason: str = "OK", **headers: str) -> Route:
    """A route that answers ``body`` with ``content_type`` (None: no Content-Type header)."""
    all_headers = {k.replace("_", "-"): v for k, v in headers.items()}
    if content_type is not None:
        all_headers["Content-Type"] = content_type

    def handler(req: Request, conn: Connection) -> None:
        conn.send(response(status, body, all_headers, reason))

    return handler


def not_found(req: Request, conn: Connection) -> None:
    conn.send(response(404, b"<html><body>Not Found</body></html>", {"Content-Type": "text/html"},
                       "Not Found"))


# ---------------------------------------------------------------------------
# loadstone state
# ---------------------------------------------------------------------------


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
