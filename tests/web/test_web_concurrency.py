"""Many loads at once: load_images, bounded decoding, cancelling a load that waits for its turn."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

import loadstone
import loadstone_web.loader
from loadstone import LoadCancelledError
from loadstone_web import config

from .helpers import Images, Server, pillow_decode, wait_until

TIMEOUT = 30


def test_load_images_in_bulk(server: Server, images: Images) -> None:
    names = ["rgb.png", "rgba.png", "palette.png", "grey16.png", "baseline.jpg", "progressive.jpg",
             "cmyk.jpg", "grey.jpg"] * 4
    ids = [server.url(f"/{name}") + f"?copy={i}" for i, name in enumerate(names)]
    loads = loadstone.load_images(ids)
    for name, image_id, load in zip(names, ids, loads, strict=True):
        image = load.result(TIMEOUT)
        convert = {"palette.png": "RGB", "cmyk.jpg": "RGB"}.get(name)
        np.testing.assert_array_equal(image.pixel_data, pillow_decode(images.files[name], convert=convert))
        assert image_id in loadstone.cache
    assert server.connections <= 10  # keep-alive: a handful of connections for 32 images


@pytest.fixture
def gated_decode(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Decodes wait for ``state["gate"]``; ``state["running"]`` / ``["peak"]`` count them."""
    state: dict[str, Any] = {"gate": threading.Event(), "running": 0, "peak": 0, "lock": threading.Lock()}
    original = loadstone_web.loader.decode

    def decode(*args: Any, **kwargs: Any) -> Any:
        with state["lock"]:
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
        try:
            state["gate"].wait(TIMEOUT)
            return original(*args, **kwargs)
        finally:
            with state["lock"]:
                state["running"] -= 1

    monkeypatch.setattr(loadstone_web.loader, "decode", decode)
    return state


def test_decoding_is_bounded(server: Server, gated_decode: dict[str, Any]) -> None:
    config.decode_concurrency = 2
    ids = [server.url("/rgb.png") + f"?n={i}" for i in range(8)]
    loads = loadstone.load_images(ids)
    assert wait_until(lambda: gated_decode["running"] == 2, 5.0)
    time.sleep(0.2)  # the fetches are done; the other six wait for a slot
    assert gated_decode["running"] == 2
    gated_decode["gate"].set()
    for load in loads:
        load.result(TIMEOUT)
    assert gated_decode["peak"] == 2


def test_cancel_while_waiting_for_a_decode_slot(server: Server, gated_decode: dict[str, Any]) -> None:
    config.decode_concurrency = 1
    first = loadstone.load_image(server.url("/rgb.png"))
    assert wait_until(lambda: gated_decode["running"] == 1, 5.0)
    second = loadstone.load_and_cache_image(server.url("/grey.png"))
    time.sleep(0.2)
    started = time.monotonic()
    second.cancel()
    with pytest.raises(LoadCancelledError):
        second.result(TIMEOUT)
    assert time.monotonic() - started < 1.0
    assert server.url("/grey.png") not in loadstone.cache
    gated_decode["gate"].set()
    first.result(TIMEOUT)
    assert gated_decode["peak"] == 1
