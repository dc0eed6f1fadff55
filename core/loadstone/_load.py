"""One load from start to end: one load object, one promise, one context, one deadline, one check.

A :class:`Load` is made by the request pool for every load that is not a
cache hit (or by a function loader called directly).  It owns the promise
the caller holds, the :class:`LoadContext` that cancellation and the
deadline act through, the one deadline timer, and the one check that the
loader produced an :class:`Image`.  Whoever settles the promise first (the
work, a cancel, the deadline) wins; the others find it done.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._context import LoadContext
from ._image import Image
from ._load_object import ImageLoadObject, settle
from .errors import ImageLoadError, LoadCancelledError, LoadstoneError, LoadTimeoutError, PluginError
from .toolkit.timers import Timer, call_at

if TYPE_CHECKING:
    from ._events import EventBus

__all__ = ["Load", "as_load_error", "QUEUED", "RUNNING", "DONE"]

QUEUED, RUNNING, DONE = 0, 1, 2
#: Raised on the caller's thread by the user or the interpreter: never turned into a load failure.
_INTERRUPTS = (KeyboardInterrupt, SystemExit)


class Load:
    """The state of one load; the pool schedules it, the loader's work settles it."""

    __slots__ = (
        "image_id", "loader", "options", "events", "load_object", "deadline", "context", "timer",
        "inner", "state", "started_at", "on_done", "_promise", "notify_outcome", "_failed",
        "request_type", "priority", "seq",
    )

    def __init__(
        self, image_id: str, loader: Any, options: Mapping[str, Any], events: EventBus | None = None,
        *, request_type: Any = None, priority: int = 0, seq: int = 0,
        on_done: Callable[[Load], None] | None = None, notify_outcome: bool = True,
    ) -> None:
        self.image_id = image_id
        self.loader = loader
        self.options = options
        self.events = events
        #: Trigger IMAGE_LOADED / IMAGE_LOAD_FAILED (progress goes to ``events`` regardless).
        self.notify_outcome = notify_outcome
        self.request_type = request_type
        self.priority = priority
        self.seq = seq
        self.state = QUEUED
        self.inner: ImageLoadObject | None = None
        self.context: LoadContext | None = None
        self.on_done = on_done
        self.started_at = 0.0
        self._failed: bool | None = None  # how this load settled it (None: not by this load)
        promise: concurrent.futures.Future[Image] = concurrent.futures.Future()
        #: What the caller holds.  Dropped, with the promise, once settled: the promise
        #: keeps its callbacks (this load), and a load keeping the promise would be a
        #: cycle that holds the image until the garbage collector runs.
        self.load_object: ImageLoadObject | None = ImageLoadObject(
            promise, self._cancel_fn, self._decache, image_id)
        self._promise: concurrent.futures.Future[Image] | None = promise
        promise.add_done_callback(self._settled)
        # "timeout" bounds the whole load as the caller sees it, queue time included.
        timeout = options.get("timeout") if options else None
        if timeout is not None:
            self.deadline: float | None = time.monotonic() + float(timeout)
            self.timer: Timer | None = call_at(self.deadline, self.expire)
        else:
            self.deadline = None
            self.timer = None

    def __lt__(self, other: Load) -> bool:  # heap order within one request type
        return (self.priority, self.seq) < (other.priority, other.seq)

    @property
    def finished(self) -> bool:
        """True once the load settled (succeeded, failed or was cancelled)."""
        promise = self._promise
        return promise is None or promise.done()

    # -- running -----------------------------------------------------------
    def ensure_context(self) -> LoadContext:
        """The load's context (made on first use: raw loaders never need one)."""
        context = self.context
        if context is None:
            context = self.context = LoadContext(self.image_id, deadline=self.deadline,
                                                 progress=self._progress, limit=self._timeout_seconds())
            if self.finished:
                context.cancel()
        return context

    def start(self) -> None:
        """Run the loader (the pool calls this once the load may start)."""
        self.started_at = time.perf_counter()
        loader = self.loader
        start_load = getattr(loader, "start_load", None)
        if start_load is not None:  # an image_loader function: runs this very load
            try:
                start_load(self)
            except _INTERRUPTS:
                self.cancel()
                raise
            except BaseException as exc:
                self.fail(exc, "loader raised")
            return
        try:
            inner = loader(self.image_id, self.options)
        except _INTERRUPTS:  # ^C while the loader was called: the load stops, the interrupt goes on
            self.cancel()
            raise
        except BaseException as exc:
            self.fail(exc, "loader raised")
            return
        if not isinstance(inner, ImageLoadObject):
            self.fail(PluginError(f"loader {loader!r} returned {type(inner).__name__}, expected an "
                                  "ImageLoadObject", image_id=self.image_id))
            return
        self.adopt(inner)

    def adopt(self, inner: ImageLoadObject) -> None:
        """Follow a raw loader's own load object until it settles."""
        self.inner = inner
        if self.finished:  # cancelled or timed out while the loader was called
            inner.cancel()
            return
        inner.promise.add_done_callback(self._inner_done)

    def _inner_done(self, promise: concurrent.futures.Future[Any]) -> None:
        try:
            result = promise.result(0)
        except concurrent.futures.CancelledError:
            self.fail(LoadCancelledError("load cancelled", image_id=self.image_id))
        except BaseException as error:
            self.fail(error)
        else:
            self.succeed(result)

    # -- settling ----------------------------------------------------------
    def succeed(self, result: object) -> bool:
        """Settle with what the loader produced, after the one check that it is an Image."""
        if not isinstance(result, Image):
            return self.fail(PluginError(
                f"loader {getattr(self.loader, '__wrapped__', self.loader)!r} returned "
                f"{type(result).__name__}, expected loadstone.Image", image_id=self.image_id))
        promise = self._promise
        if promise is None:
            return False
        if not result.load_time_ms and self.started_at:
            result.load_time_ms = (time.perf_counter() - self.started_at) * 1000.0
        self._failed = False
        try:
            promise.set_result(result)
        except concurrent.futures.InvalidStateError:  # settled a moment ago by a cancel
            return False
        self._notify(result, None)
        return True

    def fail(self, error: BaseException, what: str = "load failed") -> bool:
        """Settle with a typed error (a cancel cancels the promise, as futures do)."""
        promise = self._promise
        if promise is None:
            return False
        typed = as_load_error(error, self.image_id, what)
        if isinstance(typed, LoadCancelledError) and not isinstance(typed, LoadTimeoutError):
            if self.context is not None:
                self.context.cancel(typed)
            self._failed = True
            settled = promise.cancel()
        else:
            if self.context is not None and isinstance(typed, LoadTimeoutError):
                self.context.cancel(typed)
            self._failed = True
            settled = settle(promise, error=typed)
        if settled:
            self._notify(None, typed)
        return settled

    def cancel(self, error: LoadstoneError | None = None) -> bool:
        """Stop the load, queued or running; False when it had already finished."""
        if self.finished:
            return False
        return self.fail(error or LoadCancelledError("load cancelled", image_id=self.image_id))

    def _cancel_fn(self) -> None:
        self.cancel()

    def discard(self) -> None:
        """Drop a load that never started and that nobody holds (another caller's load is shared)."""
        self.on_done = None
        timer = self.timer
        if timer is not None:
            self.timer = None
            timer.cancel()

    def _timeout_seconds(self) -> float | None:
        timeout = self.options.get("timeout") if self.options else None
        return float(timeout) if timeout is not None else None

    def expire(self) -> None:
        """The deadline passed."""
        seconds = self._timeout_seconds()
        words = "load timed out" if seconds is None else f"load did not finish within {seconds:g} s"
        self.cancel(LoadTimeoutError(words, image_id=self.image_id))

    def _settled(self, promise: concurrent.futures.Future[Any]) -> None:
        """After the promise settled, by anyone: stop the timer and the work, free the slot."""
        timer = self.timer
        if timer is not None:
            self.timer = None
            timer.cancel()
        load_object = self.load_object
        assert load_object is not None
        load_object.run_inline = None
        load_object.cancel_fn = None
        failed = self._failed
        if failed is None:  # settled from outside (promise.cancel())
            failed = promise.cancelled() or promise.exception() is not None
        if failed:
            context = self.context
            if context is not None:
                context.cancel()  # no-op when it already carries the reason
            inner = self.inner
            if inner is not None:
                inner.cancel()  # stops a raw loader's work (closes its sockets)
        # Break load <-> load object cycles so a finished image is freed by reference
        # counting as soon as the cache drops it.
        inner = self.inner
        load_object.decache = inner.decache if inner is not None else None
        self.inner = None
        self._promise = None
        self.load_object = None
        on_done = self.on_done
        if on_done is not None:
            self.on_done = None
            on_done(self)

    def _decache(self) -> None:
        inner = self.inner
        if inner is not None and inner.decache is not None:
            inner.decache()

    # -- events --------------------------------------------------------------
    def _notify(self, image: Image | None, error: LoadstoneError | None) -> None:
        events = self.events
        if events is None or not self.notify_outcome:
            return
        if error is None:
            if events.has_subscribers(events.IMAGE_LOADED):
                events.trigger(events.IMAGE_LOADED, {"image_id": self.image_id, "image": image})
        elif events.has_subscribers(events.IMAGE_LOAD_FAILED):
            events.trigger(events.IMAGE_LOAD_FAILED, {"image_id": self.image_id, "error": error})

    def _progress(self, loaded: int, total: int | None) -> None:
        events = self.events
        if events is not None and events.has_subscribers(events.IMAGE_LOAD_PROGRESS):
            percent = None if not total else 100.0 * loaded / total
            events.trigger(events.IMAGE_LOAD_PROGRESS,
                           {"image_id": self.image_id, "loaded": loaded, "total": total, "percent": percent})


def as_load_error(exc: BaseException, image_id: str, what: str = "load failed") -> LoadstoneError:
    """Type an arbitrary failure: loadstone errors pass (image id filled in), others are wrapped.

    A foreign exception reaching here is one the loader did not classify; the
    message says so, and the original is chained.
    """
    if isinstance(exc, LoadstoneError):
        if exc.image_id is None:
            exc.image_id = image_id
        return exc
    if isinstance(exc, concurrent.futures.CancelledError):
        return LoadCancelledError("load cancelled", image_id=image_id)
    error = ImageLoadError(f"{what} (unclassified by the loader): {type(exc).__name__}: {exc}",
                           image_id=image_id)
    error.__cause__ = exc
    return error
