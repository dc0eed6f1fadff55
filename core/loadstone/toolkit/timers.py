"""One timer thread for every deadline in the process: load timeouts, HTTP deadlines, plugins'.

A thread per timeout would not scale to thousands of loads, and a thread
blocked in ``recv`` cannot notice a deadline by itself: only another thread
can wake it.  The thread starts on demand and exits after a short idle spell,
so an idle process keeps no extra thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["Timer", "call_at", "call_later"]

_log = logging.getLogger("loadstone")
_IDLE_EXIT_SECONDS = 2.0


class Timer:
    """A scheduled call; :meth:`cancel` it once it is no longer needed."""

    __slots__ = ("when", "seq", "callback")

    def __init__(self, when: float, seq: int, callback: Callable[[], Any]) -> None:
        self.when = when
        self.seq = seq
        self.callback: Callable[[], Any] | None = callback

    def __lt__(self, other: Timer) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    @property
    def cancelled(self) -> bool:
        """True once cancelled or run."""
        return self.callback is None

    def cancel(self) -> None:
        """Do not run the callback (the entry is dropped lazily)."""
        _scheduler.cancel(self)


class _Scheduler:
    """A heap of timers served by one lazily started daemon thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[Timer] = []
        self._live = 0
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, when: float, callback: Callable[[], Any]) -> Timer:
        timer = Timer(when, next(self._seq), callback)
        with self._cond:
            heapq.heappush(self._heap, timer)
            self._live += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="loadstone-timer", daemon=True)
                self._thread.start()
            elif self._heap[0] is timer:
                self._cond.notify()
        return timer

    def cancel(self, timer: Timer) -> None:
        with self._cond:
            if timer.callback is not None:
                timer.callback = None
                self._live -= 1
                if self._live == 0:
                    self._heap.clear()  # nothing left to wait for: let the thread idle out

    def _run(self) -> None:
        while True:
            callback: Callable[[], Any] | None = None
            with self._cond:
                while self._heap and self._heap[0].callback is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait(_IDLE_EXIT_SECONDS)
                    if not self._heap:
                        self._thread = None
                        return
                    continue
                delay = self._heap[0].when - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                timer = heapq.heappop(self._heap)
                callback, timer.callback = timer.callback, None
                if callback is not None:
                    self._live -= 1
            if callback is not None:
                try:
                    callback()
                except Exception:  # a timer callback never kills the thread
                    _log.exception("timer callback %r failed", callback)

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread


_scheduler = _Scheduler()


def call_at(when: float, callback: Callable[[], Any]) -> Timer:
    """Run ``callback`` on the timer thread at :func:`time.monotonic` time ``when``."""
    return _scheduler.schedule(when, callback)


def call_later(delay: float, callback: Callable[[], Any]) -> Timer:
    """Run ``callback`` on the timer thread after ``delay`` seconds."""
    return _scheduler.schedule(time.monotonic() + max(0.0, delay), callback)


def timer_thread() -> threading.Thread | None:
    """The serving thread while it runs (tests join it)."""
    return _scheduler.thread
