"""The worker threads that run plain loader functions.

Not :class:`concurrent.futures.ThreadPoolExecutor`: it joins its threads at
interpreter exit, so one loader function stuck in code that ignores
cancellation (a C call, a sleep) would hang the program after its load was
cancelled or timed out.  These threads are daemons; everything else about
them is the executor contract.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["DaemonThreadPool"]

T = TypeVar("T")
_log = logging.getLogger("loadstone")


class DaemonThreadPool(concurrent.futures.Executor):
    """A thread pool of daemon threads, started on demand up to ``max_workers``."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "loadstone-worker") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._queue: queue.SimpleQueue[
            tuple[concurrent.futures.Future[Any] | None, Callable[[], Any]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        # One permit per idle thread; a submit that takes one needs no new thread.
        self._idle = threading.Semaphore(0)
        self._shutdown = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        """Run ``fn(*args, **kwargs)`` on a worker thread."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put((future, lambda: fn(*args, **kwargs)))
        return future

    def execute(self, fn: Callable[[], Any], /) -> None:
        """Run ``fn()`` on a worker thread, with no future (it reports its own outcome)."""
        self._put((None, fn))

    def _put(self, item: tuple[concurrent.futures.Future[Any] | None, Callable[[], Any]]) -> None:
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a pool that was shut down")
            self._queue.put(item)
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self._prefix}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, call = item
            del item
            if future is None:
                try:
                    call()
                except BaseException:  # the call reports its own outcome; never kill the thread
                    _log.exception("worker job %r raised", call)
                self._idle.release()
                del call
                continue
            if not future.set_running_or_notify_cancel():
                self._idle.release()
                continue
            result: Any = None
            error: BaseException | None = None
            try:
                result = call()
            except BaseException as exc:  # delivered through the future
                error = exc
            # Idle before settling: the future's callbacks often submit the next
            # load (the request pool), and it should go to this warm thread
            # rather than wake or start another one.
            self._idle.release()
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
            del future, call, result, error

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the threads once queued work is done (or cancelled)."""
        with self._lock:
            self._shutdown = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None and item[0] is not None:
                    item[0].cancel()
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()
