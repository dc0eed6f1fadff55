"""Fire callbacks at deadlines from one shared thread.

A thread blocked in ``recv()`` cannot notice a total timeout by itself:
socket timeouts apply per ``recv`` and a trickling server resets them.  Only
another thread can interrupt it (by shutting the socket down), so requests
with a deadline schedule that here.  The thread starts on demand and exits
when nothing is scheduled, so an idle process keeps no extra thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Watchdog", "WATCHDOG"]

_log = logging.getLogger("loadstone.http")


class _Entry:
    """One scheduled call; ``callback`` becomes None once cancelled or run."""

    __slots__ = ("callback", "seq", "when")

    def __init__(self, when: float, seq: int, callback: Callable[[], object]) -> None:
        self.when = when
        self.seq = seq
        self.callback: Callable[[], object] | None = callback

    def __lt__(self, other: _Entry) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


class Watchdog:
    """A timer heap served by one lazily started daemon thread."""

    def __init__(self, idle_exit: float = 2.0) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[_Entry] = []
        self._live = 0
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._idle_exit = idle_exit

    def schedule(self, when: float, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback`` at monotonic time ``when``; returns a cancel function."""
        entry = _Entry(when, next(self._seq), callback)
        with self._cond:
            heapq.heappush(self._heap, entry)
            self._live += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="loadstone-http-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0] is entry:
                self._cond.notify()

        def cancel() -> None:
            with self._cond:
                if entry.callback is not None:
                    entry.callback = None
                    self._live -= 1
                    if self._live == 0:
                        self._heap.clear()  # nothing left to wait for: let the thread idle out

        return cancel

    @property
    def thread(self) -> threading.Thread | None:
        """The serving thread while it runs (tests join it)."""
        return self._thread

    def _run(self) -> None:
        while True:
            callback: Callable[[], object] | None = None
            with self._cond:
                while self._heap and self._heap[0].callback is None:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait(self._idle_exit)
                    if not self._heap:
                        self._thread = None
                        return
                    continue
                delay = self._heap[0].when - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                entry = heapq.heappop(self._heap)
                callback = entry.callback
                if callback is not None:
                    entry.callback = None
                    self._live -= 1
            if callback is not None:
                try:
                    callback()
                except Exception:  # a timer callback never kills the thread
                    _log.exception("watchdog callback %r failed", callback)


WATCHDOG = Watchdog()
