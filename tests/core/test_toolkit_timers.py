"""loadstone.toolkit timers: one thread for every deadline, in order, cancellable, gone when idle."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from loadstone.toolkit import call_at, call_later


def test_timers_run_in_time_order() -> None:
    ran: list[str] = []
    done = threading.Event()
    now = time.monotonic()

    def record(name: str) -> None:
        ran.append(name)
        if len(ran) == 5:
            done.set()

    call_later(0.3, lambda: record("c"))
    call_later(0.1, lambda: record("a"))
    call_at(now + 0.2, lambda: record("b1"))
    call_at(now + 0.2, lambda: record("b2"))  # the same time: in the order they were scheduled
    call_later(-5, lambda: record("now"))  # a delay in the past runs at once
    assert done.wait(5)
    assert ran == ["now", "a", "b1", "b2", "c"]


def test_an_earlier_timer_wakes_the_thread_waiting_for_a_later_one() -> None:
    later = call_later(30, lambda: None)
    fired = threading.Event()
    started = time.monotonic()
    try:
        call_later(0.05, fired.set)
        assert fired.wait(5)
        assert time.monotonic() - started < 1.0
    finally:
        later.cancel()


def test_a_cancelled_timer_never_runs() -> None:
    ran: list[str] = []
    done = threading.Event()
    timer = call_later(0.05, lambda: ran.append("cancelled"))
    assert not timer.cancelled
    timer.cancel()
    assert timer.cancelled
    timer.cancel()  # twice is harmless
    call_later(0.15, done.set)
    assert done.wait(5)
    assert ran == []
    ran_event = threading.Event()
    run = call_later(0, ran_event.set)
    assert ran_event.wait(5)
    assert run.cancelled  # "cancelled" also once it ran: it will not run (again)


def test_a_callback_that_raises_does_not_stop_the_thread(caplog: pytest.LogCaptureFixture) -> None:
    after = threading.Event()

    def broken() -> None:
        raise RuntimeError("broken timer callback")

    call_later(0.01, broken)
    call_later(0.05, after.set)
    assert after.wait(5)
    assert "broken timer callback" in caplog.text


def test_the_timer_thread_starts_on_demand_and_exits_when_idle() -> None:
    code = textwrap.dedent("""
        import json, threading, time
        from loadstone.toolkit import call_later

        def timer_threads():
            return [t for t in threading.enumerate() if t.name == "loadstone-timer"]

        before = len(timer_threads())
        fired = threading.Event()
        call_later(0.01, fired.set)
        fired.wait(5)
        running = timer_threads()
        daemon = all(t.daemon for t in running)
        for thread in running:
            thread.join(10)  # the thread ends by itself a moment after its last timer
        after = len(timer_threads())
        again = threading.Event()
        call_later(0.01, again.set)  # and a new one starts for the next timer
        print(json.dumps({"before": before, "running": len(running), "daemon": daemon, "after": after,
                          "again": again.wait(5)}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result == {"before": 0, "running": 1, "daemon": True, "after": 0, "again": True}
