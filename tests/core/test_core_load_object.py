"""ImageLoadObject: result(), typed errors, await inside asyncio, done(), cancel()."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time

import numpy as np
import pytest

import loadstone
from loadstone import ImageLoadObject, LoadCancelledError, LoadTimeoutError


@pytest.fixture
def gated_scheme(register, gates, make_image):
    """A scheme whose loads block until ``gate.set()``; returns (scheme, gate, calls)."""
    gate = gates()
    calls: list[str] = []

    @loadstone.image_loader
    def load(image_id, options):
        calls.append(image_id)
        assert gate.wait(30), "test never opened the gate"
        return make_image(image_id)

    return register(load), gate, calls


def test_from_image_is_done_and_returns_the_image(make_image) -> None:
    image = make_image("x:1")
    load_object = ImageLoadObject.from_image(image)
    assert load_object.done()
    assert load_object.result(timeout=0) is image
    assert load_object.image_id == "x:1"
    assert load_object.exception(timeout=0) is None
    assert load_object.cancel() is False  # already finished


def test_result_waits_for_the_image(gated_scheme) -> None:
    scheme, gate, _ = gated_scheme
    load_object = loadstone.load_image(f"{scheme}:1")
    assert not load_object.done()
    gate.set()
    image = load_object.result(timeout=10)
    assert isinstance(image, loadstone.Image)
    assert image.image_id == f"{scheme}:1"
    assert load_object.done()


def test_wait_timeout_raises_load_timeout_error_and_the_load_goes_on(gated_scheme) -> None:
    scheme, gate, calls = gated_scheme
    load_object = loadstone.load_and_cache_image(f"{scheme}:1")
    started = time.monotonic()
    with pytest.raises(LoadTimeoutError) as caught:
        load_object.result(timeout=0.1)
    assert 0.09 <= time.monotonic() - started < 2.0
    assert caught.value.image_id == f"{scheme}:1"
    assert isinstance(caught.value, loadstone.LoadstoneError)
    assert not load_object.done()
    gate.set()
    assert load_object.result(timeout=10).image_id == f"{scheme}:1"
    assert calls == [f"{scheme}:1"]


def test_cancel_gives_load_cancelled_error(gated_scheme) -> None:
    scheme, _, _ = gated_scheme
    load_object = loadstone.load_image(f"{scheme}:1")
    assert load_object.cancel() is True
    assert load_object.done()
    with pytest.raises(LoadCancelledError) as caught:
        load_object.result(timeout=5)
    assert caught.value.image_id == f"{scheme}:1"
    # Still a concurrent.futures.CancelledError, as Future users expect.
    assert isinstance(caught.value, concurrent.futures.CancelledError)
    assert isinstance(load_object.exception(timeout=5), LoadCancelledError)
    assert load_object.cancel() is False


def test_cancel_calls_cancel_fn_then_cancels_the_promise() -> None:
    order: list[str] = []
    promise: concurrent.futures.Future = concurrent.futures.Future()
    load_object = ImageLoadObject(promise, lambda: order.append(f"cancel_fn done={promise.done()}"),
                                  image_id="y:1")
    promise.add_done_callback(lambda _: order.append("promise cancelled"))
    assert load_object.cancel() is True
    assert order == ["cancel_fn done=False", "promise cancelled"]
    assert promise.cancelled()


def test_result_of_a_bare_cancelled_future_is_typed() -> None:
    promise: concurrent.futures.Future = concurrent.futures.Future()
    promise.cancel()
    with pytest.raises(LoadCancelledError):
        ImageLoadObject(promise, image_id="z:1").result(timeout=1)


def test_await_inside_asyncio(gated_scheme) -> None:
    scheme, gate, _ = gated_scheme

    async def main() -> tuple[loadstone.Image, loadstone.Image]:
        first = loadstone.load_and_cache_image(f"{scheme}:1")
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, gate.set)
        image = await first
        # An already finished load is awaitable too.
        again = await loadstone.load_and_cache_image(f"{scheme}:1")
        return image, again

    image, again = asyncio.run(main())
    assert image.image_id == f"{scheme}:1"
    assert again is image


def test_await_raises_the_typed_error(register) -> None:
    @loadstone.image_loader
    def broken(image_id, options):
        raise ValueError("bad bytes")

    scheme = register(broken)

    async def main() -> None:
        await loadstone.load_image(f"{scheme}:1")

    with pytest.raises(loadstone.ImageLoadError) as caught:
        asyncio.run(main())
    assert isinstance(caught.value.__cause__, ValueError)


def test_await_does_not_block_the_event_loop(gated_scheme) -> None:
    scheme, gate, _ = gated_scheme
    ticks: list[int] = []

    async def ticker() -> None:
        for i in range(3):
            ticks.append(i)
            await asyncio.sleep(0)
        gate.set()

    async def main() -> loadstone.Image:
        load_object = loadstone.load_image(f"{scheme}:1")
        task = asyncio.ensure_future(ticker())
        image = await load_object
        await task
        return image

    assert asyncio.run(main()).image_id == f"{scheme}:1"
    assert ticks == [0, 1, 2]


def test_cancelling_the_awaiting_task_does_not_cancel_the_shared_load(gated_scheme) -> None:
    scheme, gate, _ = gated_scheme
    load_object = loadstone.load_and_cache_image(f"{scheme}:1")

    async def main() -> bool:
        waiting = asyncio.ensure_future(_await(load_object))
        await asyncio.sleep(0.02)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return load_object.done()

    assert asyncio.run(main()) is False
    assert not load_object.done()
    assert loadstone.cache.get_image_load_object(f"{scheme}:1") is load_object
    gate.set()
    assert load_object.result(timeout=10).image_id == f"{scheme}:1"


async def _await(load_object: ImageLoadObject) -> loadstone.Image:
    return await load_object


def test_a_load_finishing_after_its_awaiting_loop_closed_logs_no_error(gated_scheme, caplog) -> None:
    scheme, gate, _ = gated_scheme
    load_object = loadstone.load_and_cache_image(f"{scheme}:1")

    async def main() -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(_await(load_object), timeout=0.02)

    asyncio.run(main())  # the awaiting task was cancelled and the loop is closed now
    callbacks_ran = threading.Event()
    load_object.promise.add_done_callback(lambda _: callbacks_ran.set())  # runs after wake()
    with caplog.at_level(logging.ERROR):
        gate.set()
        assert callbacks_ran.wait(10)
    assert load_object.result(timeout=1).image_id == f"{scheme}:1"
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == []


def test_done_reflects_the_state(gated_scheme) -> None:
    scheme, gate, _ = gated_scheme
    load_object = loadstone.load_image(f"{scheme}:1")
    assert load_object.done() is False
    assert "pending" in repr(load_object)
    gate.set()
    load_object.result(timeout=10)
    assert load_object.done() is True
    assert "done" in repr(load_object)


def test_add_done_callback_receives_the_load_object(make_image) -> None:
    seen: list[ImageLoadObject] = []
    pending = ImageLoadObject(image_id="q:1")
    pending.add_done_callback(seen.append)
    assert seen == []
    pending.promise.set_result(make_image("q:1"))
    assert seen == [pending]
    done = ImageLoadObject.from_image(make_image("q:2"))
    done.add_done_callback(seen.append)
    assert seen == [pending, done]


def test_pixel_data_arrives_intact(register) -> None:
    pixels = np.arange(12, dtype=np.uint16).reshape(3, 4)

    @loadstone.image_loader
    def load(image_id, options):
        return loadstone.Image.from_array(image_id, pixels)

    scheme = register(load)
    image = loadstone.load_image(f"{scheme}:1").result(timeout=10)
    np.testing.assert_array_equal(image.get_pixel_data(), pixels)
