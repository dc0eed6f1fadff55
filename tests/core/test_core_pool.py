"""The request pool: priority order, per-type limits, cancellation and timeouts."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

import loadstone
from loadstone import ImageLoadObject, LoadCancelledError, LoadTimeoutError, RequestType


@pytest.fixture
def blocker(register, gates, make_image):
    """A threaded loader that holds its pool slot until ``gate.set()``: returns (scheme, gate, entered)."""
    gate = gates()
    entered = threading.Event()

    @loadstone.image_loader
    def hold(image_id, options):
        entered.set()
        assert gate.wait(30)
        return make_image(image_id)

    return register(hold), gate, entered


@pytest.fixture
def recorder(register, make_image):
    """A raw loader that records the order it is called in: returns (scheme, calls)."""
    calls: list[str] = []
    lock = threading.Lock()

    def record(image_id, options):
        with lock:
            calls.append(image_id.split(":", 1)[1])
        return ImageLoadObject.from_image(make_image(image_id))

    return register(record), calls


QUEUED = [  # (name, request_type, priority) in submission order
    ("compute-p0", RequestType.COMPUTE, 0),
    ("prefetch-p5-a", "prefetch", 5),
    ("thumb-p0", "THUMBNAIL", 0),
    ("inter-p3-a", RequestType.INTERACTION, 3),
    ("prefetch-pm1", RequestType.PREFETCH, -1),
    ("inter-p1", "interaction", 1),
    ("inter-p3-b", "Interaction", 3),
    ("thumb-pm2", RequestType.THUMBNAIL, -2),
    ("compute-pm10", "compute", -10),
    ("inter-p3-c", RequestType.INTERACTION, 3),
    ("prefetch-p5-b", "prefetch", 5),
]
EXPECTED_ORDER = [
    "inter-p1", "inter-p3-a", "inter-p3-b", "inter-p3-c",
    "thumb-pm2", "thumb-p0",
    "prefetch-pm1", "prefetch-p5-a", "prefetch-p5-b",
    "compute-pm10", "compute-p0",
]


@pytest.mark.parametrize("threaded", [False, True])
def test_priority_order(single_slot, blocker, recorder, register, make_image, threaded) -> None:
    block_scheme, gate, entered = blocker
    scheme, calls = recorder
    if threaded:  # the same through worker threads
        @loadstone.image_loader
        def record(image_id, options):
            calls.append(image_id.split(":", 1)[1])
            return make_image(image_id)

        scheme = register(record)
    held = loadstone.load_image(f"{block_scheme}:hold")
    assert entered.wait(10)
    load_objects = [
        loadstone.load_image(f"{scheme}:{name}", request_type=request_type, priority=priority)
        for name, request_type, priority in QUEUED
    ]
    stats = loadstone.pool.stats()
    assert stats["interaction"] == {"queued": 4, "running": 1}
    assert stats["thumbnail"] == {"queued": 2, "running": 0}
    assert stats["prefetch"] == {"queued": 3, "running": 0}
    assert stats["compute"] == {"queued": 2, "running": 0}
    assert calls == []
    assert not any(obj.done() for obj in load_objects)
    gate.set()
    held.result(timeout=10)
    for obj in load_objects:
        obj.result(timeout=10)
    assert calls == EXPECTED_ORDER


def test_request_type_defaults_to_interaction(single_slot, blocker, recorder) -> None:
    block_scheme, gate, entered = blocker
    scheme, calls = recorder
    held = loadstone.load_image(f"{block_scheme}:hold")
    assert entered.wait(10)
    later = [
        loadstone.load_image(f"{scheme}:thumb", request_type="thumbnail"),
        loadstone.load_image(f"{scheme}:default"),
        loadstone.load_and_cache_image(f"{scheme}:cached-default", priority=1),
    ]
    assert loadstone.pool.stats()["interaction"]["queued"] == 2
    gate.set()
    held.result(timeout=10)
    for obj in later:
        obj.result(timeout=10)
    assert calls == ["default", "cached-default", "thumb"]


def test_per_type_limit(register, gates) -> None:
    loadstone.pool.set_max_concurrent("prefetch", 2)
    assert loadstone.pool.get_max_concurrent(RequestType.PREFETCH) == 2
    condition = threading.Condition()
    started: list[str] = []
    running = {"prefetch": 0, "max": 0}
    release = {f"p{i}": gates() for i in range(6)}

    @loadstone.image_loader
    def load(image_id, options):
        name = image_id.split(":", 1)[1]
        if name == "interaction":
            return loadstone.Image.from_array(image_id, np.zeros((1, 1), np.uint8))
        with condition:
            started.append(name)
            running["prefetch"] += 1
            running["max"] = max(running["max"], running["prefetch"])
            condition.notify_all()
        try:
            assert release[name].wait(30)
        finally:
            with condition:
                running["prefetch"] -= 1
        return loadstone.Image.from_array(image_id, np.zeros((1, 1), np.uint8))

    scheme = register(load)
    prefetches = [loadstone.load_image(f"{scheme}:p{i}", request_type=RequestType.PREFETCH) for i in range(6)]

    def wait_started(count: int) -> None:
        with condition:
            assert condition.wait_for(lambda: len(started) >= count, timeout=10), started

    wait_started(2)
    assert loadstone.pool.stats()["prefetch"] == {"queued": 4, "running": 2}
    # Another type is not held back by the prefetch limit.
    loadstone.load_image(f"{scheme}:interaction").result(timeout=10)
    assert started == ["p0", "p1"]
    for i in range(6):
        release[f"p{i}"].set()
        prefetches[i].result(timeout=10)
        if i + 3 <= 6:
            wait_started(i + 3)
        stats = loadstone.pool.stats()["prefetch"]
        assert stats["running"] <= 2
    assert started == [f"p{i}" for i in range(6)]
    assert running["max"] == 2


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        loadstone.pool.set_max_concurrent("prefetch", 0)
    with pytest.raises(ValueError):
        loadstone.pool.set_max_concurrent("bogus", 3)
    assert loadstone.pool.get_max_concurrent() == 16


@pytest.mark.parametrize("how", ["load_object", "cancel_load_image"])
def test_cancel_a_queued_request(single_slot, blocker, recorder, how) -> None:
    block_scheme, gate, entered = blocker
    scheme, calls = recorder
    held = loadstone.load_and_cache_image(f"{block_scheme}:hold")
    assert entered.wait(10)
    queued = loadstone.load_and_cache_image(f"{scheme}:queued")
    other = loadstone.load_and_cache_image(f"{scheme}:other")
    assert f"{scheme}:queued" in loadstone.cache
    if how == "load_object":
        assert queued.cancel() is True
    else:
        assert loadstone.cancel_load_image(f"{scheme}:queued") is True
        assert loadstone.cancel_load_image(f"{scheme}:queued") is False
    with pytest.raises(LoadCancelledError) as caught:
        queued.result(timeout=5)
    assert caught.value.image_id == f"{scheme}:queued"
    assert f"{scheme}:queued" not in loadstone.cache
    assert loadstone.pool.stats()["interaction"]["queued"] == 1
    gate.set()
    held.result(timeout=10)
    other.result(timeout=10)
    assert calls == ["other"]  # the cancelled request never reached its loader


@pytest.mark.parametrize("how", ["load_object", "cancel_load_image", "cancel_load_all"])
def test_cancel_a_running_load_blocked_in_recv(register, silent_server, how) -> None:
    in_recv, left_recv = threading.Event(), threading.Event()
    received: list[bytes] = []

    @loadstone.image_loader
    def load(image_id, options):
        sock = socket.create_connection(silent_server, timeout=10)
        try:
            sock.settimeout(30)
            loadstone.current_load().on_cancel(lambda: sock.shutdown(socket.SHUT_RDWR))
            in_recv.set()
            received.append(sock.recv(1024))  # the server never sends
            loadstone.current_load().check()
            raise AssertionError("recv returned without a cancel")
        finally:
            sock.close()
            left_recv.set()

    scheme = register(load)
    image_id = f"{scheme}:socket"
    load_object = loadstone.load_and_cache_image(image_id)
    assert in_recv.wait(10)
    assert not left_recv.is_set()
    cancelled_at = time.monotonic()
    if how == "load_object":
        assert load_object.cancel() is True
    elif how == "cancel_load_image":
        assert loadstone.cancel_load_image(image_id) is True
    else:
        assert loadstone.cancel_load_all() == 1
    assert left_recv.wait(1.0), "the loader thread is still in recv 1 s after the cancel"
    assert time.monotonic() - cancelled_at < 1.0
    assert received == [b""]
    with pytest.raises(LoadCancelledError):
        load_object.result(timeout=5)
    assert image_id not in loadstone.cache
    assert loadstone.pool.pending() == 0
    assert loadstone.cancel_load_all() == 0


def test_cancel_load_all_counts_queued_and_running(single_slot, register, recorder) -> None:
    scheme, calls = recorder
    entered, stopped = threading.Event(), threading.Event()

    @loadstone.image_loader
    def cooperative(image_id, options):
        context = loadstone.current_load()
        entered.set()
        try:
            context.wait(30)
            context.check()
        finally:
            stopped.set()

    running = loadstone.load_and_cache_image(f"{register(cooperative)}:run")
    assert entered.wait(10)
    queued = [loadstone.load_image(f"{scheme}:{i}", request_type="prefetch") for i in range(3)]
    assert loadstone.pool.pending() == 4
    assert loadstone.cancel_load_all() == 4
    assert stopped.wait(1.0)
    for obj in [running, *queued]:
        with pytest.raises(LoadCancelledError):
            obj.result(timeout=5)
    assert calls == []  # cancelling the running one did not start a queued one
    assert loadstone.pool.pending() == 0
    assert len(loadstone.cache) == 0


def test_cancelling_the_running_load_starts_the_next(single_slot, register, recorder) -> None:
    scheme, calls = recorder
    entered = threading.Event()

    @loadstone.image_loader
    def cooperative(image_id, options):
        entered.set()
        loadstone.current_load().wait(30)
        loadstone.current_load().check()

    running = loadstone.load_image(f"{register(cooperative)}:run")
    assert entered.wait(10)
    nxt = loadstone.load_image(f"{scheme}:next")
    assert calls == []
    running.cancel()
    assert nxt.result(timeout=10).image_id == f"{scheme}:next"
    assert calls == ["next"]


def test_timeout_of_a_queued_request(single_slot, blocker, recorder) -> None:
    block_scheme, gate, entered = blocker
    scheme, calls = recorder
    held = loadstone.load_image(f"{block_scheme}:hold")
    assert entered.wait(10)
    started = time.monotonic()
    queued = loadstone.load_and_cache_image(f"{scheme}:late", timeout=0.3)
    with pytest.raises(LoadTimeoutError) as caught:
        queued.result(timeout=10)
    assert 0.25 <= time.monotonic() - started < 0.8
    assert caught.value.image_id == f"{scheme}:late"
    assert f"{scheme}:late" not in loadstone.cache
    assert loadstone.pool.stats()["interaction"]["queued"] == 0
    gate.set()
    held.result(timeout=10)
    assert calls == []


def test_timeout_of_a_running_raw_load(register) -> None:
    cancelled = threading.Event()

    def never(image_id, options):  # a raw loader whose promise nobody completes
        return ImageLoadObject(image_id=image_id, cancel_fn=cancelled.set)

    scheme = register(never)
    started = time.monotonic()
    with pytest.raises(LoadTimeoutError):
        loadstone.load_and_cache_image(f"{scheme}:1", timeout=0.2).result(timeout=10)
    assert time.monotonic() - started < 0.7
    assert cancelled.wait(1), "the timed-out load's cancel_fn was not called"
    assert f"{scheme}:1" not in loadstone.cache
    assert loadstone.pool.pending() == 0


def test_finished_loads_free_their_slots(single_slot, recorder, register) -> None:
    scheme, calls = recorder

    @loadstone.image_loader
    def broken(image_id, options):
        raise ValueError("x")

    broken_scheme = register(broken)
    results = [loadstone.load_image(f"{broken_scheme}:{i}") for i in range(3)]
    results += [loadstone.load_image(f"{scheme}:{i}") for i in range(3)]
    for obj in results[:3]:
        with pytest.raises(loadstone.ImageLoadError):
            obj.result(timeout=10)
    for obj in results[3:]:
        obj.result(timeout=10)
    assert calls == ["0", "1", "2"]
    assert loadstone.pool.pending() == 0
    assert loadstone.pool.stats()["interaction"] == {"queued": 0, "running": 0}


def test_a_long_backlog_of_synchronous_loads_drains(single_slot, blocker, recorder) -> None:
    # Each load finishes inside its loader call; draining the backlog must not recurse per load.
    block_scheme, gate, entered = blocker
    scheme, calls = recorder
    held = loadstone.load_image(f"{block_scheme}:hold")
    assert entered.wait(10)
    count = 3000
    queued = [loadstone.load_image(f"{scheme}:{i}") for i in range(count)]
    assert loadstone.pool.stats()["interaction"]["queued"] == count
    gate.set()
    held.result(timeout=10)
    for obj in queued:
        obj.result(timeout=10)
    assert calls == [str(i) for i in range(count)]
    assert loadstone.pool.pending() == 0
