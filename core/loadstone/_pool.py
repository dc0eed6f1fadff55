"""The request pool: which load starts next, and how many run at once.

Request types are served in rank order INTERACTION > THUMBNAIL > PREFETCH >
COMPUTE; within a type the lower ``priority`` starts first, FIFO among
equals.  Each type has its own concurrency limit and all share a global one.
A queued request is cancelled by dropping it; a running one through its
loader's ``cancel_fn``, which stops the work (see :mod:`loadstone._context`).
"""

from __future__ import annotations

import concurrent.futures
import heapq
import itertools
import threading
import time
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

from ._load_object import ImageLoadObject, settle
from ._loaders import as_load_error, check_image
from ._timer import TimerHandle, call_later
from .errors import LoadCancelledError, LoadstoneError, LoadTimeoutError

if TYPE_CHECKING:
    from ._events import EventBus
    from ._image import Image
    from ._loaders import ImageLoader

__all__ = ["RequestType", "RequestPool", "Request"]


class RequestType(str, Enum):
    """Why an image is wanted; decides its rank in the pool."""

    INTERACTION = "interaction"
    THUMBNAIL = "thumbnail"
    PREFETCH = "prefetch"
    COMPUTE = "compute"

    @classmethod
    def parse(cls, value: RequestType | str) -> RequestType:
        """Accept the member or its name/value in any case."""
        if isinstance(value, RequestType):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            names = ", ".join(member.name for member in cls)
            raise ValueError(f"unknown request type {value!r}; expected one of {names}") from None


_RANK = {kind: rank for rank, kind in enumerate(RequestType)}
DEFAULT_LIMITS = {
    RequestType.INTERACTION: 8,
    RequestType.THUMBNAIL: 6,
    RequestType.PREFETCH: 8,
    RequestType.COMPUTE: 2,
}
DEFAULT_TOTAL_LIMIT = 16

_QUEUED, _RUNNING, _DONE = 0, 1, 2


class Request:
    """One image load in the pool; ``load_object`` is what the caller holds."""

    __slots__ = (
        "_pool",
        "image_id", "loader", "options", "request_type", "priority", "seq",
        "state", "inner", "load_object", "timer", "submitted",
    )

    def __init__(
        self, pool: RequestPool, image_id: str, loader: ImageLoader, options: Mapping[str, Any],
        request_type: RequestType, priority: int, seq: int,
    ) -> None:
        self._pool = pool
        self.image_id = image_id
        self.loader = loader
        self.options = options
        self.request_type = request_type
        self.priority = priority
        self.seq = seq
        self.state = _QUEUED
        self.inner: ImageLoadObject | None = None
        self.timer: TimerHandle | None = None
        self.submitted = time.perf_counter()
        promise: concurrent.futures.Future[Image] = concurrent.futures.Future()
        self.load_object = ImageLoadObject(
            promise, self._cancel, self._decache, image_id
        )

    def _cancel(self) -> None:
        self._pool.cancel_request(self)

    def _decache(self) -> None:
        inner = self.inner
        if inner is not None and inner.decache is not None:
            inner.decache()

    def __lt__(self, other: Request) -> bool:  # heap order within one type
        return (self.priority, self.seq) < (other.priority, other.seq)


class RequestPool:
    """Schedules loader calls by request type and priority."""

    def __init__(self, events: EventBus | None = None) -> None:
        self._lock = threading.Lock()
        self._queues: dict[RequestType, list[Request]] = {kind: [] for kind in RequestType}
        self._running: dict[RequestType, int] = dict.fromkeys(RequestType, 0)
        self._limits: dict[RequestType, int] = dict(DEFAULT_LIMITS)
        self._total_limit = DEFAULT_TOTAL_LIMIT
        self._total_running = 0
        self._live: dict[int, Request] = {}
        self._seq = itertools.count()
        self._events = events
        self._local = threading.local()

    # -- configuration -------------------------------------------------
    def set_max_concurrent(self, request_type: RequestType | str | None, limit: int) -> None:
        """Limit how many loads of a type (or, with None, of all types) run at once."""
        if int(limit) < 1:
            raise ValueError("a concurrency limit must be at least 1")
        with self._lock:
            if request_type is None:
                self._total_limit = int(limit)
            else:
                self._limits[RequestType.parse(request_type)] = int(limit)
        self._pump()

    def get_max_concurrent(self, request_type: RequestType | str | None = None) -> int:
        """The limit of a type, or the global one."""
        if request_type is None:
            return self._total_limit
        return self._limits[RequestType.parse(request_type)]

    def stats(self) -> dict[str, Any]:
        """Queued and running counts per type."""
        with self._lock:
            return {
                kind.value: {"queued": sum(r.state == _QUEUED for r in queue),
                             "running": self._running[kind]}
                for kind, queue in self._queues.items()
            }

    # -- requests ------------------------------------------------------
    def create(
        self, image_id: str, loader: ImageLoader, options: Mapping[str, Any],
        request_type: RequestType, priority: int,
    ) -> Request:
        """A request not yet queued; :meth:`submit` it (the cache inserts it first)."""
        return Request(self, image_id, loader, options, request_type, priority, next(self._seq))

    def submit(self, request: Request) -> ImageLoadObject:
        """Queue ``request`` and start whatever may start now."""
        # "timeout" bounds the whole load as the caller sees it, queue time included.
        timeout = request.options.get("timeout") if request.options else None
        if timeout is not None:
            request.timer = call_later(float(timeout), lambda: self._expire(request, float(timeout)))
        with self._lock:
            self._live[id(request)] = request
            heapq.heappush(self._queues[request.request_type], request)
        self._pump()
        return request.load_object

    def _pump(self) -> None:
        """Start queued requests while limits allow (outside the lock: loaders may be slow to return).

        A loader that completes synchronously finishes its request inside
        ``_start``; the pump already running on this thread picks up the
        freed slot, so finishing never recurses into another pump.
        """
        local = self._local
        if getattr(local, "pumping", False):
            return
        local.pumping = True
        try:
            while True:
                with self._lock:
                    request = self._next_startable()
                    if request is None:
                        return
                    request.state = _RUNNING
                    self._running[request.request_type] += 1
                    self._total_running += 1
                self._start(request)
        finally:
            local.pumping = False

    def _next_startable(self) -> Request | None:
        if self._total_running >= self._total_limit:
            return None
        for kind in RequestType:  # rank order
            queue = self._queues[kind]
            while queue and queue[0].state != _QUEUED:
                heapq.heappop(queue)  # dropped (cancelled) entries
            if queue and self._running[kind] < self._limits[kind]:
                return heapq.heappop(queue)
        return None

    def _start(self, request: Request) -> None:
        try:
            inner = request.loader(request.image_id, request.options)
            if not isinstance(inner, ImageLoadObject):
                raise check_image_load_object(inner, request)
        except BaseException as exc:
            self._finish(request, error=as_load_error(exc, request.image_id, "loader raised"))
            return
        request.inner = inner
        if request.state == _DONE:  # cancelled or timed out while the loader was being called
            inner.cancel()
            return
        inner.promise.add_done_callback(lambda promise: self._inner_done(request, promise))

    def _inner_done(self, request: Request, promise: concurrent.futures.Future[Image]) -> None:
        if promise.cancelled():
            self._finish(request, error=LoadCancelledError("load cancelled", image_id=request.image_id))
            return
        error = promise.exception()
        if error is not None:
            self._finish(request, error=as_load_error(error, request.image_id))
            return
        try:
            image = check_image(promise.result(), request.image_id, request.loader)
        except LoadstoneError as exc:
            self._finish(request, error=exc)
            return
        self._finish(request, image=image)

    def _finish(self, request: Request, image: Image | None = None,
                error: LoadstoneError | None = None) -> None:
        with self._lock:
            was = request.state
            if was == _DONE:
                return
            request.state = _DONE
            self._live.pop(id(request), None)
            if was == _RUNNING:
                self._running[request.request_type] -= 1
                self._total_running -= 1
        if request.timer is not None:
            request.timer.cancel()
        # Break request <-> load object cycles so a finished image is freed by
        # reference counting as soon as the cache drops it.
        load_object = request.load_object
        inner = request.inner
        load_object.cancel_fn = None
        load_object.decache = inner.decache if inner is not None else None
        request.inner = None
        request.timer = None
        promise = load_object.promise
        if error is None:
            settled = settle(promise, image)
        elif isinstance(error, LoadCancelledError) and not isinstance(error, LoadTimeoutError):
            settled = promise.cancel()
        else:
            settled = settle(promise, error=error)
        if settled and self._events is not None:
            self._notify(request, image, error)
        if was == _RUNNING:
            self._pump()

    def _notify(self, request: Request, image: Image | None, error: LoadstoneError | None) -> None:
        events = self._events
        assert events is not None
        if error is None:
            if events.has_subscribers(events.IMAGE_LOADED):
                events.trigger(events.IMAGE_LOADED, {"image_id": request.image_id, "image": image})
        elif events.has_subscribers(events.IMAGE_LOAD_FAILED):
            events.trigger(events.IMAGE_LOAD_FAILED, {"image_id": request.image_id, "error": error})

    # -- cancellation --------------------------------------------------
    def cancel_request(self, request: Request,
                       error: LoadstoneError | None = None) -> bool:
        """Drop a queued request or stop a running one; False if already finished."""
        if request.state == _DONE:
            return False
        inner = request.inner
        self._finish(request, error=error or LoadCancelledError("load cancelled", image_id=request.image_id))
        if inner is not None:
            inner.cancel()  # stops the work (closes sockets, wakes sleepers)
        return True

    def _expire(self, request: Request, timeout: float) -> None:
        self.cancel_request(
            request, LoadTimeoutError(f"load did not finish within {timeout:g} s", image_id=request.image_id)
        )

    def cancel_image(self, image_id: str) -> bool:
        """Cancel every unfinished request for ``image_id``."""
        with self._lock:
            matching = [r for r in self._live.values() if r.image_id == image_id]
        return sum(self.cancel_request(r) for r in matching) > 0

    def cancel_all(self) -> int:
        """Cancel every queued and running request; returns how many."""
        with self._lock:
            requests = list(self._live.values())
        # Queued first, so cancelling a running one does not start a queued one.
        requests.sort(key=lambda r: r.state != _QUEUED)
        return sum(self.cancel_request(r) for r in requests)

    def pending(self) -> int:
        """Requests queued or running."""
        return len(self._live)


def check_image_load_object(value: object, request: Request) -> LoadstoneError:
    """The error for a loader that returned something other than an ImageLoadObject."""
    from .errors import PluginError

    return PluginError(
        f"loader {request.loader!r} returned {type(value).__name__}, expected an ImageLoadObject",
        image_id=request.image_id,
    )

