"""One shared timer thread for load deadlines (a thread per timeout would not scale)."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["TimerHandle", "call_later"]

_log = logging.getLogger("loadstone")


class TimerHandle:
    """A scheduled call; :meth:`cancel` it once it is no longer needed."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], Any]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Do not run the callback (it is dropped lazily)."""
        self.cancelled = True
        self.callback = _noop


def _noop() -> None:
    return None


class _TimerThread:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, delay: float, callback: Callable[[], Any]) -> TimerHandle:
        handle = TimerHandle(time.monotonic() + max(0.0, delay), callback)
        with self._cond:
            heapq.heappush(self._heap, (handle.when, next(self._seq), handle))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="loadstone-timer", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is handle:
                self._cond.notify()
        return handle

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        handle = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(delay)
            if not handle.cancelled:
                try:
                    handle.callback()
                except Exception:
                    _log.exception("timer callback failed")


_timers = _TimerThread()


def call_later(delay: float, callback: Callable[[], Any]) -> TimerHandle:
    """Run ``callback`` on the timer thread after ``delay`` seconds."""
    return _timers.schedule(delay, callback)
