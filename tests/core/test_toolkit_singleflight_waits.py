"""loadstone.toolkit single flight and waits: shared work, each waiter on its own terms, no polling."""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest

from loadstone import (
    InvalidImageError,
    LoadCancelledError,
    LoadContext,
    LoadTimeoutError,
    current_load,
    use_load_context,
)
from loadstone.toolkit import SingleFlight, rebrand, sleep, wait_done, wait_result


class Caller:
    """``call(fn)`` on a thread of its own, inside a LoadContext of ``image_id``."""

    def __init__(self, image_id: str, fn: Callable[[], Any]) -> None:
        self.context = LoadContext(image_id)
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), name=f"caller-{image_id}")
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            with use_load_context(self.context):
                self.result = fn()
        except BaseException as exc:
            self.error = exc

    def join(self, seconds: float = 10.0) -> Caller:
        self.thread.join(seconds)
        assert not self.thread.is_alive(), f"{self.context.image_id} is still waiting"
        return self


def started_after(event: threading.Event, calls: list[str], name: str) -> Callable[[], str]:
    """A computation that records itself, then waits for ``event``."""

    def compute() -> str:
        calls.append(name)
        assert event.wait(10)
        return f"value of {name}"

    return compute


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.005)


# -- single flight ------------------------------------------------------------------------
def test_concurrent_callers_share_one_computation(gate: threading.Event) -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    calls: list[str] = []
    callers = [Caller(f"x:{n}", lambda n=n: flight.do("key", started_after(gate, calls, f"c{n}")))
               for n in range(5)]
    wait_until(lambda: flight.in_flight("key") and len(calls) == 1)
    time.sleep(0.05)  # the other callers are waiting, not computing
    gate.set()
    results = {caller.join().result for caller in callers}
    assert len(calls) == 1 and results == {f"value of {calls[0]}"}
    assert not flight.in_flight("key")
    assert flight.do("key", lambda: "again") == "again"  # nothing is kept once it is done


def test_a_cancelled_owner_s_waiters_compute_again() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    calls: list[str] = []

    def compute() -> str:
        context = current_load()
        assert context is not None
        calls.append(context.image_id)
        if context.image_id == "x:owner":  # stops when its own caller is cancelled
            context.wait(10)
            context.check()
        return f"value for {context.image_id}"

    owner = Caller("x:owner", lambda: flight.do("key", compute))
    wait_until(lambda: calls == ["x:owner"])
    waiter = Caller("x:waiter", lambda: flight.do("key", compute))
    time.sleep(0.05)  # the waiter waits on the owner's computation
    owner.context.cancel()
    assert isinstance(owner.join().error, LoadCancelledError)
    assert waiter.join().result == "value for x:waiter"  # still wanted: it computed again
    assert calls == ["x:owner", "x:waiter"]


def test_an_error_reaches_each_waiter_named_for_its_own_load(gate: threading.Event) -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    started = threading.Event()

    def failing() -> str:
        started.set()
        assert gate.wait(10)
        raise InvalidImageError("the shared file is truncated", image_id="x:owner")

    owner = Caller("x:owner", lambda: flight.do("key", failing))
    assert started.wait(5)
    waiters = [Caller(f"x:waiter{n}", lambda: flight.do("key", failing)) for n in range(3)]
    time.sleep(0.05)
    gate.set()
    owner_error = owner.join().error
    assert isinstance(owner_error, InvalidImageError) and owner_error.image_id == "x:owner"
    for n, waiter in enumerate(waiters):
        error = waiter.join().error
        assert isinstance(error, InvalidImageError)
        assert error.image_id == f"x:waiter{n}"
        assert error is not owner_error and error.__cause__ is owner_error


def test_a_waiter_stops_at_its_own_cancel_while_the_owner_goes_on(gate: threading.Event) -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    calls: list[str] = []
    owner = Caller("x:owner", lambda: flight.do("key", started_after(gate, calls, "owner")))
    wait_until(lambda: calls == ["owner"])
    waiter = Caller("x:waiter", lambda: flight.do("key", started_after(gate, calls, "waiter")))
    time.sleep(0.05)
    waiter.context.cancel()
    assert isinstance(waiter.join(5).error, LoadCancelledError)
    gate.set()
    assert owner.join().result == "value of owner"
    assert calls == ["owner"]


# -- waits -----------------------------------------------------------------------------------
@contextlib.contextmanager
def cancelled_soon() -> Iterator[LoadContext]:
    """A context cancelled 0.1 s from now: the block must end with LoadCancelledError, soon."""
    context = LoadContext("x:cancelled")
    timer = threading.Timer(0.1, context.cancel)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(LoadCancelledError):
            yield context
        assert time.monotonic() - started < 2
    finally:
        timer.join(5)


def test_wait_done_is_woken_by_the_future() -> None:
    future: concurrent.futures.Future[int] = concurrent.futures.Future()
    timer = threading.Timer(0.1, future.set_result, args=(7,))
    timer.start()
    try:
        started = time.monotonic()
        assert wait_done(future, LoadContext("x:1"))
        assert time.monotonic() - started < 2
    finally:
        timer.join(5)
    assert wait_done(future)  # already done: at once, with or without a context


def test_wait_done_is_woken_by_the_load_s_cancel() -> None:
    future: concurrent.futures.Future[int] = concurrent.futures.Future()
    with cancelled_soon() as context:
        wait_done(future, context)


def test_wait_done_stops_at_the_load_s_deadline_or_its_own_timeout() -> None:
    future: concurrent.futures.Future[int] = concurrent.futures.Future()
    started = time.monotonic()
    with pytest.raises(LoadTimeoutError):
        wait_done(future, LoadContext("x:1", timeout=0.2))
    assert 0.15 < time.monotonic() - started < 2
    assert wait_done(future, LoadContext("x:2", timeout=5), timeout=0.1) is False
    assert wait_done(future, None, timeout=0.05) is False  # no load: a plain bounded wait
    with use_load_context(LoadContext("x:3", timeout=0.1)), pytest.raises(LoadTimeoutError):
        wait_done(future)  # the current load's context by default


def test_waits_do_not_poll() -> None:
    """One blocking wait until something happens: no wake-ups every few milliseconds."""
    waits: list[float | None] = []
    real_wait = threading.Event.wait
    me = threading.get_ident()

    def counting(event: threading.Event, timeout: float | None = None) -> bool:
        if threading.get_ident() == me:
            waits.append(timeout)
        return real_wait(event, timeout)

    future: concurrent.futures.Future[int] = concurrent.futures.Future()
    context = LoadContext("x:2", timeout=5)
    timers = [threading.Timer(0.3, future.set_result, args=(1,)), threading.Timer(0.6, context.cancel)]
    for timer in timers:  # started before counting: Thread.start waits on an Event too
        timer.start()
    try:
        with mock.patch.object(threading.Event, "wait", counting):
            assert wait_done(future, LoadContext("x:1"))  # no deadline
            with pytest.raises(LoadCancelledError):
                sleep(10, context)
    finally:
        for timer in timers:
            timer.cancel()
            timer.join(5)
    assert len(waits) == 2, waits  # one wait each, for as long as there is to wait
    assert waits[0] is None and waits[1] is not None and waits[1] >= 4


def test_wait_result_names_the_waiting_load() -> None:
    future: concurrent.futures.Future[int] = concurrent.futures.Future()
    shared = InvalidImageError("bad frame", image_id="x:first")
    future.set_exception(shared)
    with pytest.raises(InvalidImageError) as caught:
        wait_result(future, LoadContext("x:second"))
    assert caught.value.image_id == "x:second" and caught.value.__cause__ is shared
    assert shared.image_id == "x:first"  # the shared error is left as it was
    done: concurrent.futures.Future[int] = concurrent.futures.Future()
    done.set_result(3)
    assert wait_result(done) == 3
    with pytest.raises(LoadTimeoutError, match="still waiting"):
        wait_result(concurrent.futures.Future(), LoadContext("x:3"), timeout=0.05)


def test_sleep_wakes_at_cancel_and_deadline() -> None:
    started = time.monotonic()
    sleep(0.05)  # no load: a plain sleep
    assert time.monotonic() - started >= 0.05
    with cancelled_soon() as context:
        sleep(10, context)
    started = time.monotonic()
    with pytest.raises(LoadTimeoutError):
        sleep(10, LoadContext("x:2", timeout=0.1))  # shorter deadline than the sleep
    assert time.monotonic() - started < 2
    sleep(0.01, LoadContext("x:3", timeout=5))  # a sleep that fits returns quietly


def test_rebrand_copies_loadstone_errors_only() -> None:
    error = InvalidImageError("bad", image_id="x:1")
    copy = rebrand(error, "x:2")
    assert copy is not error and copy.image_id == "x:2" and error.image_id == "x:1"
    assert str(copy).startswith("bad")
    other = KeyError("k")
    assert rebrand(other, "x:2") is other
