"""Synchronous loaders finishing inside the pool must not recurse per queued request."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import numpy as np
import pytest

import loadstone
from loadstone import Image, ImageLoadObject


@pytest.fixture
def one_slot() -> Iterator[None]:
    loadstone.pool.set_max_concurrent(None, 1)
    yield
    loadstone.pool.set_max_concurrent(None, 16)


def test_thousands_of_queued_synchronous_loads_drain_without_recursion(
    one_slot: None, caplog: pytest.LogCaptureFixture
) -> None:
    image = Image.from_array("sync:0", np.zeros((2, 2), np.uint8))
    gate: concurrent.futures.Future[Image] = concurrent.futures.Future()
    loadstone.register_image_loader("syncdone", lambda image_id, options: ImageLoadObject.from_image(image))
    loadstone.register_image_loader("syncgate", lambda image_id, options: ImageLoadObject(gate))
    held = loadstone.load_image("syncgate:1")
    queued = loadstone.load_images([f"syncdone:{i}" for i in range(3000)])
    assert not any(load.done() for load in queued)  # all behind the one busy slot
    gate.set_result(image)  # frees the slot: the whole queue drains on this thread
    assert held.done()
    assert all(load.result(0) is image for load in queued)
    assert loadstone.pool.pending() == 0
    # concurrent.futures logs (and swallows) errors raised inside done-callbacks.
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text[:500]
