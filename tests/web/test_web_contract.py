"""The loader contract (loadstone.testing.LoaderContract) against a real loopback server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest

from loadstone import (
    InvalidImageError,
    PolicyDeniedError,
    ResourceLimitError,
    TransportError,
    UnsupportedError,
)
from loadstone.testing import LoaderContract
from loadstone_web import load_web

from .helpers import Connection, Images, Request, Server, reply, response


def stall(req: Request, conn: Connection) -> None:
    conn.send(response(200, b"\x89PNG\r\n\x1a\n" + b"\x00" * 4000, {"Content-Type": "image/png"})[:120])
    conn.stall()
    conn.close()


class _WebContract(LoaderContract):
    """Fills the ids from a server that lives as long as the test class."""

    html: ClassVar[bytes] = b"<!doctype html><title>Error</title><p>Something went wrong</p>"

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _ids(cls, images: Images) -> Iterator[None]:
        server = Server()
        for name in ("rgb.png", "rgba.png", "palette.png", "grey16.png", "baseline.jpg",
                     "progressive.jpg", "cmyk.jpg", "exif-6.jpg", "anim.gif", "bomb.png", "truncated.jpg"):
            server.route(f"/{name}", reply(images.files[name], images.content_types[name]))
        server.route("/error.png", reply(cls.html, "text/html"))
        server.route("/stall.png", stall)
        url: Callable[[str], str] = server.url
        cls.valid_ids = [url("/rgb.png"), url("/rgba.png"), url("/palette.png"), url("/grey16.png"),
                         "web:" + url("/baseline.jpg"), url("/progressive.jpg"), url("/cmyk.jpg"),
                         url("/exif-6.jpg")]
        cls.invalid_ids = {
            url("/missing.png"): TransportError,
            url("/error.png"): InvalidImageError,
            url("/anim.gif"): UnsupportedError,
            url("/bomb.png"): ResourceLimitError,
            url("/truncated.jpg"): InvalidImageError,
            "web:file:///etc/hostname": PolicyDeniedError,
            "web:gopher://host/a.png": UnsupportedError,
        }
        cls.slow_id = url("/stall.png")
        try:
            yield
        finally:
            server.stop()


class TestWebSchemeContract(_WebContract):
    """Through loadstone's dispatch (the plugin as installed)."""

    loader = "http"


class TestWebLoaderContract(_WebContract):
    """The ImageLoader object itself."""

    loader = load_web
