"""Waiting inside a load without polling: woken by the awaited work, the load's cancel or its deadline.

A load waiting on work another load started (a shared fetch, a batch of
frames, a parsed file) must stop at *its own* cancel or deadline, not its
neighbour's, and must name its own image id in the error it raises.
"""

from __future__ import annotations

import concurrent.futures
import copy
import threading
import time
from typing import Any, TypeVar

from .._context import LoadContext, current_load
from ..errors import LoadstoneError, LoadTimeoutError

__all__ = ["wait_done", "wait_result", "sleep", "rebrand"]

T = TypeVar("T")


def wait_done(future: concurrent.futures.Future[Any], context: LoadContext | None = None,
              timeout: float | None = None) -> bool:
    """Block until ``future`` is done; True if it is, False when ``timeout`` passed first.

    With a load context (the current load's by default) a cancel or a passed
    deadline raises the load's error at once; nothing polls.
    """
    if future.done():
        return True
    if context is None:
        context = current_load()
    if context is None:
        done, _ = concurrent.futures.wait([future], timeout)
        return bool(done)
    event = threading.Event()
    future.add_done_callback(lambda _: event.set())
    unregister = context.on_cancel(event.set)
    ends = None if timeout is None else time.monotonic() + timeout
    try:
        while not future.done():
            context.check()
            limit = _earliest(context.remaining(), None if ends is None else ends - time.monotonic())
            if limit is not None and limit <= 0:
                context.check()
                return False
            event.wait(limit)
    finally:
        unregister()
    return True


def wait_result(future: concurrent.futures.Future[T], context: LoadContext | None = None,
                timeout: float | None = None) -> T:
    """The future's result, waited for as :func:`wait_done` does; its error names this load's id.

    Raises :class:`LoadTimeoutError` when ``timeout`` passes first.
    """
    if context is None:
        context = current_load()
    if not wait_done(future, context, timeout):
        raise LoadTimeoutError(f"still waiting after {timeout:g} s",
                               image_id=None if context is None else context.image_id)
    error = future.exception()
    if error is None:
        return future.result()
    fresh = rebrand(error, None if context is None else context.image_id)
    if fresh is error:
        raise error
    raise fresh from error


def sleep(seconds: float, context: LoadContext | None = None) -> None:
    """Sleep, waking early with the load's error when it is cancelled or its deadline passes."""
    if context is None:
        context = current_load()
    if context is None:
        time.sleep(max(0.0, seconds))
        return
    remaining = context.remaining()
    if remaining is not None and remaining < seconds:
        context.wait(remaining)
        context.check()
        raise context.reason or context.timeout_error()
    if context.wait(seconds):
        context.check()


def rebrand(error: BaseException, image_id: str | None) -> BaseException:
    """A copy of a shared error that names this load's image id (one object per raising thread)."""
    if not isinstance(error, LoadstoneError):
        return error
    fresh = copy.copy(error)
    if image_id is not None:
        fresh.image_id = image_id
    return fresh


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)
