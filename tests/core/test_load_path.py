"""The load path: one load per load_image, inline runs on a waiting caller, cancel and timeout of both.

A "parked" executor (``image_loader(func, executor=...)``) holds the work
until the test lets a thread take it, so the moment a load waits for a
thread is under the test's control.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pytest

import loadstone
from loadstone import Image, ImageLoadObject, LoadCancelledError, LoadTimeoutError


def small(image_id: str) -> Image:
    return Image.from_array(image_id, np.arange(6, dtype=np.uint8).reshape(2, 3))


class ParkedExecutor(concurrent.futures.Executor):
    """Keeps submitted work until :meth:`release` runs it on a thread of its own."""

    def __init__(self) -> None:
        self.jobs: list[Callable[[], Any]] = []
        self.threads: list[threading.Thread] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        self.jobs.append(lambda: fn(*args, **kwargs))
        return concurrent.futures.Future()

    def release(self) -> None:
        """Run the parked work on one new thread and wait for it."""
        jobs, self.jobs = self.jobs, []
        thread = threading.Thread(target=lambda: [job() for job in jobs], name="parked-release")
        self.threads.append(thread)
        thread.start()
        thread.join(10)
        assert not thread.is_alive(), "the released work did not finish"


class Recorder:
    """A load function that records the thread of each call; optionally waits on its load's cancel."""

    def __init__(self, wait: float = 0.0) -> None:
        self.threads: list[int] = []
        self.reasons: list[BaseException | None] = []
        self.stopped = threading.Event()  # set once the function saw its load stop
        self.wait = wait
        self.lock = threading.Lock()

    def __call__(self, image_id: str, options: Mapping[str, Any]) -> Image:
        with self.lock:
            self.threads.append(threading.get_ident())
        if self.wait:
            context = loadstone.current_load()
            assert context is not None
            if context.wait(self.wait):
                self.reasons.append(context.reason)
                self.stopped.set()
                context.check()
        return small(image_id)


@pytest.fixture
def parked() -> Iterator[ParkedExecutor]:
    executor = ParkedExecutor()
    yield executor
    executor.jobs.clear()
    for thread in executor.threads:
        thread.join(10)


# -- one load ------------------------------------------------------------------------
def test_a_function_loader_runs_once_per_load(loadstone_scheme: Callable[..., str]) -> None:
    record = Recorder()
    scheme = loadstone_scheme(loadstone.image_loader(record))
    loaded: list[str] = []
    loadstone.events.subscribe("IMAGE_LOADED", lambda event, detail: loaded.append(detail["image_id"]))
    image = loadstone.load_image(f"{scheme}:1").result(10)
    assert image.image_id == f"{scheme}:1"
    shared = [loadstone.load_and_cache_image(f"{scheme}:2") for _ in range(5)]
    assert all(load is shared[0] for load in shared)  # concurrent callers share one load
    assert shared[0].result(10).image_id == f"{scheme}:2"
    assert len(record.threads) == 2
    assert loaded == [f"{scheme}:1", f"{scheme}:2"]  # one outcome event per load


def test_a_raw_loader_done_at_once_is_answered_with_its_own_load_object(
        loadstone_scheme: Callable[..., str]) -> None:
    made: list[ImageLoadObject] = []

    def raw(image_id: str, options: Mapping[str, Any]) -> ImageLoadObject:
        made.append(ImageLoadObject.from_image(small(image_id)))
        return made[-1]

    scheme = loadstone_scheme(raw)
    load = loadstone.load_image(f"{scheme}:1")
    assert load is made[0]  # no second promise around a finished load
    assert load.result(0).image_id == f"{scheme}:1"


# -- inline runs ---------------------------------------------------------------------
def test_waiting_without_a_timeout_runs_the_function_on_the_waiting_thread(
        loadstone_scheme: Callable[..., str], parked: ParkedExecutor) -> None:
    record = Recorder()
    scheme = loadstone_scheme(loadstone.image_loader(record, executor=parked))
    load = loadstone.load_image(f"{scheme}:1")
    assert not load.done() and record.threads == []  # parked: no thread took it
    assert load.result().image_id == f"{scheme}:1"
    assert record.threads == [threading.get_ident()]
    parked.release()  # the worker's turn comes: the work is taken, it returns at once
    assert record.threads == [threading.get_ident()]


def test_waiting_with_a_timeout_never_runs_inline(loadstone_scheme: Callable[..., str],
                                                  parked: ParkedExecutor) -> None:
    record = Recorder()
    scheme = loadstone_scheme(loadstone.image_loader(record, executor=parked))
    load = loadstone.load_image(f"{scheme}:1")
    with pytest.raises(LoadTimeoutError, match="still running"):
        load.result(0.2)
    assert record.threads == []
    parked.release()
    assert load.result(10).image_id == f"{scheme}:1"
    assert len(record.threads) == 1 and record.threads[0] != threading.get_ident()


def test_a_load_with_a_timeout_never_runs_inline(loadstone_scheme: Callable[..., str],
                                                 parked: ParkedExecutor) -> None:
    record = Recorder()
    scheme = loadstone_scheme(loadstone.image_loader(record, executor=parked))
    load = loadstone.load_image(f"{scheme}:1", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(LoadTimeoutError):
        load.result()  # waits for the deadline; the caller stays free to be stopped by it
    assert time.monotonic() - started < 5
    parked.release()
    assert record.threads == []  # the timed-out work was never started


def test_a_cancelled_load_waiting_for_a_thread_never_runs(loadstone_scheme: Callable[..., str],
                                                          parked: ParkedExecutor) -> None:
    record = Recorder()
    scheme = loadstone_scheme(loadstone.image_loader(record, executor=parked))
    load = loadstone.load_image(f"{scheme}:1")
    assert load.cancel()
    with pytest.raises(LoadCancelledError):
        load.result()
    parked.release()
    assert record.threads == []


def test_cancel_stops_an_inline_run(loadstone_scheme: Callable[..., str], parked: ParkedExecutor) -> None:
    record = Recorder(wait=10.0)
    scheme = loadstone_scheme(loadstone.image_loader(record, executor=parked))
    load = loadstone.load_image(f"{scheme}:1")
    canceller = threading.Timer(0.2, load.cancel)
    canceller.start()
    started = time.monotonic()
    try:
        with pytest.raises(LoadCancelledError):
            load.result()  # runs inline, blocked in the function until the cancel wakes it
    finally:
        canceller.join(10)
    assert time.monotonic() - started < 5
    assert record.threads == [threading.get_ident()]
    assert isinstance(record.reasons[0], LoadCancelledError)


def test_timeout_stops_a_run_on_a_worker_thread(loadstone_scheme: Callable[..., str]) -> None:
    record = Recorder(wait=10.0)
    scheme = loadstone_scheme(loadstone.image_loader(record))
    started = time.monotonic()
    with pytest.raises(LoadTimeoutError):
        loadstone.load_image(f"{scheme}:1", timeout=0.2).result()
    assert time.monotonic() - started < 5
    assert record.stopped.wait(5)  # the worker wakes a moment after the caller
    assert isinstance(record.reasons[0], LoadTimeoutError)
    assert record.threads[0] != threading.get_ident()


# -- interrupts ------------------------------------------------------------------------
class _Interrupting(concurrent.futures.Executor):
    """^C arriving while a load hands its work to a thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        raise KeyboardInterrupt


def assert_nothing_left(image_id: str, loadstone_scheme: Callable[..., str]) -> None:
    """The interrupted load left no cache entry and no taken slot (the one slot serves the next load)."""
    assert loadstone.cache.get_image_load_object(image_id) is None
    assert loadstone.pool.pending() == 0
    ok = loadstone_scheme(loadstone.image_loader(Recorder()))
    assert loadstone.load_image(f"{ok}:1").result(10).image_id == f"{ok}:1"


@pytest.mark.parametrize("cache", [False, True])
def test_an_interrupt_while_a_function_load_starts_propagates(
        loadstone_scheme: Callable[..., str], single_slot: None, cache: bool) -> None:
    scheme = loadstone_scheme(loadstone.image_loader(Recorder(), executor=_Interrupting()))
    start = loadstone.load_and_cache_image if cache else loadstone.load_image
    with pytest.raises(KeyboardInterrupt):
        start(f"{scheme}:1")
    assert_nothing_left(f"{scheme}:1", loadstone_scheme)


@pytest.mark.parametrize("cache", [False, True])
def test_an_interrupt_inside_a_raw_loader_propagates(loadstone_scheme: Callable[..., str],
                                                     single_slot: None, cache: bool) -> None:
    def raw(image_id: str, options: Mapping[str, Any]) -> ImageLoadObject:
        raise KeyboardInterrupt

    scheme = loadstone_scheme(raw)
    start = loadstone.load_and_cache_image if cache else loadstone.load_image
    with pytest.raises(KeyboardInterrupt):
        start(f"{scheme}:1")
    assert_nothing_left(f"{scheme}:1", loadstone_scheme)
