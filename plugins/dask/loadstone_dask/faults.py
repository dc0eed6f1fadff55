"""Which load failures dask should retry, and keeping the others from being retried.

dask retries a failed task as a whole, whatever it raised, when the graph
was submitted with ``retries=N`` (``compute(retries=3)``,
``client.compute(..., retries=3)``, ``dask.annotate(retries=3)``); it has no
way to say "not this error".  A transient failure (the network, a 5xx, a
408/429, a load timeout) is worth another try; a permanent one (bad data, a
missing codec, a 404, a path outside the root) fails the same way every
time.  So, when a task fails permanently and its graph asked for retries,
the worker records the error with the scheduler (``set_metadata``, under
the task's key), and a retry of that task re-raises it at once without
loading anything: the image is fetched once, the error reaches the caller
once, typed and naming the image.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import cloudpickle
from distributed import get_client, get_worker

from loadstone.errors import LoadCancelledError, LoadstoneError, LoadTimeoutError, TransportError

__all__ = ["is_transient", "is_permanent", "permanent_failures_stick"]

logger = logging.getLogger(__name__)

#: HTTP statuses that may well succeed on another try.
TRANSIENT_STATUSES = frozenset({408, 425, 429})
_METADATA_ROOT = "loadstone-dask-permanent"


def is_transient(error: BaseException) -> bool:
    """A failure that another try may not see: the network, a 5xx/408/429, a load timeout."""
    if isinstance(error, LoadTimeoutError):
        return True
    if isinstance(error, TransportError):
        return error.status is None or error.status >= 500 or error.status in TRANSIENT_STATUSES
    return False


def is_permanent(error: BaseException) -> bool:
    """A loadstone failure that every try would repeat (cancellations are neither)."""
    return isinstance(error, LoadstoneError) and not isinstance(error, LoadCancelledError) \
        and not is_transient(error)


def _retrying_task() -> tuple[Any, Any] | None:
    """``(worker, key)`` of the task running in this thread if its graph asked for retries."""
    try:
        worker = get_worker()
    except ValueError:  # not in a worker: dask's local schedulers do not retry
        return None
    key = worker.get_current_task()
    state = worker.state.tasks.get(key)
    annotations = getattr(state, "annotations", None) or {}
    return (worker, key) if annotations.get("retries") else None


@contextlib.contextmanager
def permanent_failures_stick() -> Iterator[None]:
    """Run a task's body so that a retry of a permanently failed task fails again without work."""
    task = _retrying_task()
    if task is None:
        yield
        return
    _, key = task
    client = get_client()
    path = [_METADATA_ROOT, str(key)]
    recorded = client.get_metadata(path, None)
    if recorded is not None:
        raise cloudpickle.loads(recorded)
    try:
        yield
    except LoadstoneError as exc:
        if is_permanent(exc):
            try:
                client.set_metadata(path, cloudpickle.dumps(exc))
            except Exception:  # the error itself matters more than the memo
                logger.warning("could not record the permanent failure of %s", key, exc_info=True)
        raise
