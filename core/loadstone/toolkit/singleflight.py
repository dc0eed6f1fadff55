"""Single flight: concurrent callers asking for one key share one computation.

The first caller computes; the others wait on their own terms (their own
cancel and deadline, see :mod:`.waits`).  A computation that ended only
because *its* caller was cancelled or timed out is not shared as a failure:
a waiting caller that is still wanted computes it again.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from .._context import current_load
from ..errors import LoadCancelledError, LoadTimeoutError
from .waits import rebrand, wait_done

__all__ = ["SingleFlight"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """``do(key, compute)``: one ``compute()`` at a time per key, its answer shared."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[K, concurrent.futures.Future[V]] = {}

    def in_flight(self, key: K) -> bool:
        """True while a computation for ``key`` runs."""
        return key in self._pending

    def do(self, key: K, compute: Callable[[], V]) -> V:
        """The answer of ``compute()`` for ``key``: computed now, or by a caller already at it."""
        while True:
            with self._lock:
                future = self._pending.get(key)
                owner = future is None
                if future is None:
                    future = self._pending[key] = concurrent.futures.Future()
            if owner:
                return self._compute(key, compute, future)
            context = current_load()
            wait_done(future, context)
            error = future.exception()
            if error is None:
                return future.result()
            if isinstance(error, (LoadCancelledError, LoadTimeoutError)):
                continue  # its caller gave up; this one did not (wait_done would have raised)
            fresh = rebrand(error, None if context is None else context.image_id)
            if fresh is error:
                raise error
            raise fresh from error

    def _compute(self, key: K, compute: Callable[[], V], future: concurrent.futures.Future[V]) -> V:
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                self._pending.pop(key, None)
            future.set_exception(exc)
            del future  # the traceback holds this frame: no cycle through the future
            raise
        with self._lock:
            self._pending.pop(key, None)
        future.set_result(value)
        return value
