"""Where plain loader functions run: a pool of daemon threads, or the waiting caller.

Plain functions run on worker threads; when the caller waits for the image
anyway (``result()`` with no timeout) before a worker took the work, it runs
on the caller's thread instead, saving the hand-off.  (``async def``
functions run on loadstone's event-loop thread: :mod:`._async_runner`.)
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Callable
from typing import Any

from ._context import use_load_context
from ._load import Load
from ._workers import DaemonThreadPool

__all__ = ["worker_executor", "run_in_thread", "call_function"]

LoadFunction = Callable[..., Any]

_executor: DaemonThreadPool | None = None
_executor_lock = threading.Lock()


def worker_executor() -> DaemonThreadPool:
    """The shared pool of daemon threads that runs plain loader functions.

    Size: ``LOADSTONE_MAX_WORKERS`` or 16 — loads are mostly I/O and GIL-free decode.
    """
    global _executor
    executor = _executor
    if executor is None:
        with _executor_lock:
            if _executor is None:
                workers = int(os.environ.get("LOADSTONE_MAX_WORKERS", "16"))
                _executor = DaemonThreadPool(max(1, workers), thread_name_prefix="loadstone-worker")
            executor = _executor
    return executor


def call_function(load: Load, func: LoadFunction) -> None:
    """Run ``func(image_id, options)`` for ``load`` on this thread, with its context current."""
    context = load.ensure_context()
    if context.cancelled:
        return
    try:
        with use_load_context(context):
            result = func(load.image_id, load.options)
    except (KeyboardInterrupt, SystemExit):
        load.cancel()
        raise
    except BaseException as exc:
        load.fail(exc)
    else:
        load.succeed(result)


def run_in_thread(load: Load, func: LoadFunction,
                  executor: concurrent.futures.Executor | None = None) -> None:
    """Start ``func`` for ``load`` on a worker thread, or on the caller's if it waits first."""
    claim = threading.Lock()

    def run() -> None:
        if claim.acquire(blocking=False):  # the first of worker and waiting caller runs it
            call_function(load, func)

    load_object = load.load_object
    if load_object is not None and load.deadline is None:  # with a deadline, the caller must be free to stop
        load_object.run_inline = run
    if executor is None:
        worker_executor().execute(run)
    else:
        executor.submit(run)
