"""The conformance kit itself: it passes a good loader and catches a broken one."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
import pytest

import loadstone
from loadstone import Image, InvalidImageError, image_loader
from loadstone.testing import LoaderContract, check_image, check_loader


@image_loader
def good_loader(image_id: str, options: Mapping[str, Any]) -> Image:
    name = image_id.split(":", 1)[1]
    if name == "missing":
        raise InvalidImageError("no such image", image_id=image_id)
    if name == "rgb":
        return Image.from_array(image_id, np.full((4, 5, 3), 7, dtype=np.uint8))
    return Image.from_array(image_id, np.arange(20, dtype=np.int16).reshape(4, 5), window_center=10.0,
                            window_width=20.0)


class TestGoodLoaderPasses(LoaderContract):
    loader = good_loader
    valid_ids = ("kit:grey", "kit:rgb")
    invalid_ids: ClassVar[Mapping[str, type[BaseException]]] = {"kit:missing": InvalidImageError}


class _Stalling:
    """A loopback server that accepts and never answers: a load that only cancel can end."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = self.server.getsockname()
        self.stopped = threading.Event()

    def loader(self) -> Any:
        @image_loader
        def stall(image_id: str, options: Mapping[str, Any]) -> Image:
            sock = socket.create_connection(self.address, timeout=30)
            loadstone.current_load().on_cancel(lambda: sock.shutdown(socket.SHUT_RDWR))  # type: ignore[union-attr]
            try:
                sock.recv(1)
                loadstone.current_load().check()  # type: ignore[union-attr]
                raise AssertionError("unreachable: the server never sends")
            finally:
                sock.close()
                self.stopped.set()

        return stall


_stalling = _Stalling()


@pytest.fixture(scope="module", autouse=True)
def _close_stalling_server() -> Iterator[None]:
    yield
    _stalling.server.close()


class TestStallingLoaderHonoursCancelAndTimeout(LoaderContract):
    loader = _stalling.loader()
    valid_ids = ()
    slow_id = "stall:1"

    def test_image_fields_agree_with_pixels(self) -> None:  # no valid ids here
        pass


def test_check_image_catches_wrong_min_max() -> None:
    image = Image.from_array("x:1", np.arange(4, dtype=np.uint8).reshape(2, 2))
    image.max_pixel_value = 99
    with pytest.raises(AssertionError, match="min/max"):
        check_image(image)


def test_check_image_catches_shape_mismatch() -> None:
    image = Image.from_array("x:1", np.zeros((2, 3), dtype=np.uint8))
    image.rows = 3
    with pytest.raises(AssertionError, match="shape"):
        check_image(image)


def test_check_loader_catches_untyped_failure() -> None:
    @image_loader
    def leaky(image_id: str, options: Mapping[str, Any]) -> Image:
        raise InvalidImageError("bad", image_id=image_id)

    with pytest.raises(AssertionError, match="expected UnsupportedError"):
        check_loader(leaky, [], {"leaky:1": loadstone.UnsupportedError}, timeout=5)


def test_check_loader_catches_a_blocking_loader() -> None:
    def blocking(image_id: str, options: Mapping[str, Any]) -> loadstone.ImageLoadObject:
        return loadstone.ImageLoadObject.from_image(Image.from_array(image_id, np.zeros((1, 1), np.uint8)))

    class Slow(LoaderContract):
        loader = blocking
        valid_ids = ("slow:1",)
        return_within = -1.0  # any time is too long: the check must fire

    with pytest.raises(AssertionError, match="slow work must run elsewhere"):
        Slow().test_returns_load_object_at_once()
