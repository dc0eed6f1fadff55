"""Images leave memory when the cache drops them, without waiting for the cycle collector."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest

import loadstone
from loadstone import Image, image_loader


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@image_loader
def big(image_id: str, options: Mapping[str, Any]) -> Image:
    return Image.from_array(image_id, np.zeros((512, 512), np.float64))


@pytest.mark.parametrize("drop", ["purge", "remove", "evict"])
def test_dropped_images_are_freed_by_reference_counting(no_cycle_collector: None, drop: str) -> None:
    loadstone.register_image_loader("lifetime", big)
    image = loadstone.load_and_cache_image("lifetime:1").result(10)
    alive = weakref.ref(image)
    pixels = weakref.finalize(image.pixel_data, lambda: None)
    del image
    if drop == "purge":
        loadstone.cache.purge()
    elif drop == "remove":
        assert loadstone.cache.remove_image_load_object("lifetime:1")
    else:
        loadstone.cache.set_maximum_size_bytes(3 << 20)
        loadstone.load_and_cache_image("lifetime:2").result(10)
        loadstone.load_and_cache_image("lifetime:3").result(10)  # evicts lifetime:1
        assert "lifetime:1" not in loadstone.cache
    assert alive() is None, "the dropped Image is still referenced"
    assert not pixels.alive, "the dropped pixel array is still referenced"
