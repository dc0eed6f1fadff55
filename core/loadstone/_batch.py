"""Many loads of one loader run as one call of its batch function.

A loader made with :func:`image_loader` may register a batch function
(``@loader.batch``): ``load_images`` then hands it the ids that reach that
loader in groups, and the group is scheduled by the pool as one unit.  Each
id keeps its own load (promise, cache entry, deadline, cancel); the batch
function yields one Image or exception per id and each settles its load as it
comes; an error the function raises fails every load it had not settled, each
with a copy that names its own image id.  When every load of a group has ended
(done or cancelled), the group's context is cancelled, so the batch function
stops its work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ._context import LoadContext, use_load_context
from ._load import QUEUED, Load
from ._runner import worker_executor
from .errors import LoadstoneError, PluginError
from .toolkit.waits import rebrand

__all__ = ["BatchJob"]


class BatchJob:
    """A group of loads of one loader, scheduled by the pool as one unit."""

    __slots__ = ("loader", "loads", "options", "request_type", "priority", "seq", "state",
                 "context", "_left", "_lock", "on_done")

    def __init__(self, loader: Any, loads: Sequence[Load], options: Any, request_type: Any,
                 priority: int, seq: int) -> None:
        self.loader = loader
        self.loads = list(loads)
        self.options = options
        self.request_type = request_type
        self.priority = priority
        self.seq = seq
        self.state = QUEUED
        self.context = LoadContext(f"batch of {len(self.loads)} ids, first {self.loads[0].image_id!r}")
        self._left = len(self.loads)
        self._lock = threading.Lock()
        self.on_done: Any = None
        for load in self.loads:
            load.on_done = self._member_done

    def __lt__(self, other: Any) -> bool:
        return (self.priority, self.seq) < (other.priority, other.seq)

    @property
    def image_id(self) -> str:
        return self.context.image_id

    def _member_done(self, load: Load) -> None:
        with self._lock:
            self._left -= 1
            left = self._left
        if left == 0:
            self.context.cancel()  # nobody wants the rest: stop the batch function

    def cancel(self) -> bool:
        """Cancel every load of the group."""
        return sum(load.cancel() for load in self.loads) > 0

    def start(self) -> None:
        """Run the batch function on a worker thread."""
        started = time.perf_counter()
        for load in self.loads:
            load.started_at = started
        worker_executor().execute(self._run)

    def _run(self) -> None:
        try:
            pending = [load for load in self.loads if not load.finished]
            if pending and not self.context.cancelled:
                self._deliver(pending)
        finally:
            on_done, self.on_done = self.on_done, None
            if on_done is not None:
                on_done(self)

    def _deliver(self, pending: list[Load]) -> None:
        ids = [load.image_id for load in pending]
        position = 0
        try:
            with use_load_context(self.context):
                results: Iterator[Any] = iter(self.loader.batch_function(ids, self.options))
                for result in results:
                    if position >= len(pending):
                        break
                    load = pending[position]
                    position += 1
                    if isinstance(result, BaseException):
                        load.fail(_naming(result, load.image_id))
                    else:
                        load.succeed(result)
                    if self.context.cancelled:
                        break
        except BaseException as exc:
            for load in pending[position:]:
                load.fail(_own_error(exc, load.image_id))
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return
        for load in pending[position:]:
            load.fail(PluginError(f"the batch function of {self.loader!r} gave no result for this id",
                                  image_id=load.image_id))


def _naming(error: BaseException, image_id: str) -> BaseException:
    """A yielded error as it is if it names no id or this one, else a copy that names this one.

    (An error made inside the batch function names its context, the batch.)
    """
    if isinstance(error, LoadstoneError) and error.image_id not in (None, image_id):
        return _own_error(error, image_id)
    return error


def _own_error(error: BaseException, image_id: str) -> BaseException:
    """A batch's error as one load's own: a copy naming its id, the shared error as its cause.

    One object per load: each load's error names that load's image id, and
    raising it on one thread does not change what another thread raises.
    """
    fresh = rebrand(error, image_id)
    if fresh is not error:
        fresh.__cause__ = error
    return fresh
