"""Wait for work another load started on our behalf, on our own load's terms.

Why: metadata fetches and frame batches are shared by concurrent loads.  A
waiting load must still stop at *its* cancel or deadline (not its
neighbour's), must not inherit a neighbour's cancellation (the work is then
redone), and must report errors under its own image id.
"""

from __future__ import annotations

import concurrent.futures
import copy
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from loadstone import LoadContext, current_load
from loadstone.errors import LoadCancelledError, LoadstoneError, LoadTimeoutError

__all__ = ["wait_future", "wait_shared", "rebrand"]

T = TypeVar("T")


def wait_future(future: concurrent.futures.Future[Any], ctx: LoadContext | None) -> None:
    """Block until ``future`` is done, or raise when ``ctx`` is cancelled or past its deadline."""
    if ctx is None:
        concurrent.futures.wait([future])
        return
    if not future.done():
        event = threading.Event()
        future.add_done_callback(lambda _: event.set())
        unregister = ctx.on_cancel(event.set)
        try:
            while not event.wait(ctx.remaining()):
                ctx.check()  # the deadline passed without a timer firing
        finally:
            unregister()
    ctx.check()


def wait_shared(future: concurrent.futures.Future[T], retry: Callable[[], T]) -> T:
    """The result of shared work; ``retry()`` if it only failed because its owner gave up."""
    ctx = current_load()
    wait_future(future, ctx)
    error = future.exception()
    if error is None:
        return future.result()
    if isinstance(error, (LoadCancelledError, LoadTimeoutError)):
        return retry()  # the owner was cancelled or timed out; this load was not
    fresh = rebrand(error, ctx.image_id if ctx is not None else None)
    if fresh is error:
        raise error
    raise fresh from error


def rebrand(error: BaseException, image_id: str | None) -> BaseException:
    """A copy of a shared load error that names this load's image id."""
    if not isinstance(error, LoadstoneError):
        return error
    fresh = copy.copy(error)  # one object per raising thread keeps tracebacks apart
    if image_id is not None:
        fresh.image_id = image_id
    return fresh
