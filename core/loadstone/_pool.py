"""The request pool: which load starts next, and how many run at once.

Request types are served in rank order INTERACTION > THUMBNAIL > PREFETCH >
COMPUTE; within a type the lower ``priority`` starts first, FIFO among
equals.  Each type has its own concurrency limit and all share a global one.
A unit of work is one :class:`Load`, or one :class:`BatchJob` of several.
A queued load is cancelled by settling it (its heap entry is dropped
lazily); a running one through its context, which stops the work (see
:mod:`loadstone._context`).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._batch import BatchJob
from ._image import Image
from ._load import DONE, QUEUED, RUNNING, Load
from ._load_object import ImageLoadObject
from ._request_type import RequestType
from .errors import PluginError

if TYPE_CHECKING:
    from ._cache import ImageCache
    from ._events import EventBus

__all__ = ["RequestType", "RequestPool", "DEFAULT_LIMITS", "DEFAULT_TOTAL_LIMIT"]


DEFAULT_LIMITS = {
    RequestType.INTERACTION: 8,
    RequestType.THUMBNAIL: 6,
    RequestType.PREFETCH: 8,
    RequestType.COMPUTE: 2,
}
DEFAULT_TOTAL_LIMIT = 16
#: Ids per batch-function call when the loader does not say.
DEFAULT_BATCH_SIZE = 16

Unit = Load | BatchJob
_RANKED = tuple(RequestType)


class RequestPool:
    """Schedules loader calls by request type and priority."""

    def __init__(self, events: EventBus | None = None) -> None:
        self._lock = threading.Lock()
        self._queues: dict[RequestType, list[Unit]] = {kind: [] for kind in RequestType}
        self._running: dict[RequestType, int] = dict.fromkeys(RequestType, 0)
        self._limits: dict[RequestType, int] = dict(DEFAULT_LIMITS)
        self._total_limit = DEFAULT_TOTAL_LIMIT
        self._total_running = 0
        self._queued = 0  # units pushed on the heaps and not yet popped
        self._live: dict[int, Load] = {}
        self._seq = itertools.count()
        self._events = events
        self._local = threading.local()

    # -- configuration -------------------------------------------------
    def set_max_concurrent(self, request_type: RequestType | str | None, limit: int) -> None:
        """Limit how many loads of a type (or, with None, of all types) run at once."""
        if isinstance(limit, bool) or int(limit) < 1:
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

    def reset_limits(self) -> None:
        """Put the default limits back."""
        with self._lock:
            self._limits = dict(DEFAULT_LIMITS)
            self._total_limit = DEFAULT_TOTAL_LIMIT
        self._pump()

    def stats(self) -> dict[str, Any]:
        """Queued and running counts per type."""
        with self._lock:
            return {
                kind.value: {"queued": sum(unit.state == QUEUED for unit in queue),
                             "running": self._running[kind]}
                for kind, queue in self._queues.items()
            }

    # -- loads ---------------------------------------------------------
    def load(self, image_id: str, loader: Any, options: Mapping[str, Any], request_type: RequestType,
             priority: int, cache: ImageCache | None = None) -> ImageLoadObject:
        """Start (or queue) one load; with ``cache``, concurrent loads of one id share one."""
        if (cache is None and not (options and options.get("timeout") is not None)
                and getattr(loader, "start_load", None) is None):
            started = self._start_raw_now(image_id, loader, options, request_type, priority)
            if started is not None:
                return started
        load, load_object = self._new_load(image_id, loader, options, request_type, priority, cache,
                                           next(self._seq))
        if load is not None:
            self._submit(load, load)
        return load_object

    def _new_load(self, image_id: str, loader: Any, options: Mapping[str, Any], request_type: RequestType,
                  priority: int, cache: ImageCache | None, seq: int) -> tuple[Load | None, ImageLoadObject]:
        """A new load, entered in ``cache`` first; (None, the cached one) when another caller's is there."""
        load = Load(image_id, loader, options, self._events, request_type=request_type,
                    priority=priority, seq=seq)
        load_object = load.load_object
        assert load_object is not None
        if cache is not None:
            shared = cache.put_image_load_object(image_id, load_object)
            if shared is not load_object:
                load.discard()
                return None, shared  # another caller started this load a moment ago
        return load, load_object

    def _start_raw_now(self, image_id: str, loader: Any, options: Mapping[str, Any],
                       request_type: RequestType, priority: int) -> ImageLoadObject | None:
        """Call a raw loader at once when a slot is free; None when it must queue.

        A raw loader that finished synchronously (its load object is already
        done with an Image) is answered with that very load object: no second
        promise, no slot held.  Anything else is followed by a :class:`Load`.
        """
        with self._lock:
            if (self._total_running >= self._total_limit or self._running[request_type]
                    >= self._limits[request_type] or self._queues[request_type]):
                return None
            self._running[request_type] += 1
            self._total_running += 1
        load: Load | None = None
        try:
            try:
                inner = loader(image_id, options)
            except (KeyboardInterrupt, SystemExit):
                raise  # the user's ^C, not a load failure (the slot is freed below)
            except BaseException as exc:
                inner = exc
            if isinstance(inner, ImageLoadObject):
                try:
                    image = inner.promise.result(0)  # one look: done with an image, or not
                except BaseException:
                    image = None  # pending or failed: followed by a Load below
                if isinstance(image, Image):
                    events = self._events
                    if events is not None and events.has_subscribers(events.IMAGE_LOADED):
                        events.trigger(events.IMAGE_LOADED, {"image_id": image_id, "image": image})
                    return inner
            load = Load(image_id, loader, options, self._events, request_type=request_type,
                        priority=priority, seq=next(self._seq), on_done=self._done)
            load_object = load.load_object
            assert load_object is not None
            load.state = RUNNING
            with self._lock:
                self._live[id(load)] = load
            if isinstance(inner, ImageLoadObject):
                load.adopt(inner)
            elif isinstance(inner, BaseException):
                load.fail(inner, "loader raised")
            else:
                load.fail(PluginError(f"loader {loader!r} returned {type(inner).__name__}, expected an "
                                      "ImageLoadObject", image_id=image_id))
            return load_object
        finally:
            if load is None:  # answered synchronously: the slot is free again
                with self._lock:
                    self._running[request_type] -= 1
                    self._total_running -= 1

    def load_batch(self, image_ids: Sequence[str], loader: Any, options: Mapping[str, Any],
                   request_type: RequestType, priority: int, cache: ImageCache | None = None,
                   ) -> list[ImageLoadObject]:
        """Loads of many ids of one batch-capable loader, run in groups as single units."""
        result: list[ImageLoadObject] = []
        fresh: list[Load] = []
        for image_id in image_ids:
            load, load_object = self._new_load(image_id, loader, options, request_type, priority, cache, 0)
            if load is not None:
                fresh.append(load)
            result.append(load_object)
        size = max(1, int(getattr(loader, "batch_size", None) or DEFAULT_BATCH_SIZE))
        for start in range(0, len(fresh), size):
            job = BatchJob(loader, fresh[start:start + size], options, request_type, priority,
                           next(self._seq))
            self._submit(job, *job.loads)
        return result

    def _submit(self, unit: Unit, *loads: Load) -> None:
        unit.on_done = self._done
        with self._lock:
            for load in loads:
                self._live[id(load)] = load
            kind = unit.request_type
            start_now = (self._total_running < self._total_limit and self._running[kind] < self._limits[kind]
                         and not self._queues[kind])
            if start_now:  # capacity is free: no queue to wait in
                unit.state = RUNNING
                self._running[kind] += 1
                self._total_running += 1
            else:
                heapq.heappush(self._queues[kind], unit)
                self._queued += 1
        if start_now:
            unit.start()
        else:
            self._pump()

    def _pump(self) -> None:
        """Start queued units while limits allow (outside the lock: loaders may be slow to return).

        A unit that completes synchronously finishes inside ``start``; the
        pump already running on this thread picks up the freed slot, so
        finishing never recurses into another pump.
        """
        local = self._local
        if getattr(local, "pumping", False):
            return
        local.pumping = True
        try:
            while True:
                with self._lock:
                    unit = self._next_startable()
                    if unit is None:
                        return
                    unit.state = RUNNING
                    self._running[unit.request_type] += 1
                    self._total_running += 1
                unit.start()
        finally:
            local.pumping = False

    def _next_startable(self) -> Unit | None:
        if self._total_running >= self._total_limit:
            return None
        for kind in _RANKED:  # rank order
            queue = self._queues[kind]
            while queue and queue[0].state != QUEUED:
                heapq.heappop(queue)  # settled (cancelled) while queued
                self._queued -= 1
            if queue and self._running[kind] < self._limits[kind]:
                self._queued -= 1
                return heapq.heappop(queue)
        return None

    def _done(self, unit: Unit) -> None:
        """A load settled or a batch ended: forget it, free its slot, start the next."""
        with self._lock:
            was = unit.state
            unit.state = DONE
            if isinstance(unit, Load):
                self._live.pop(id(unit), None)
            else:
                for load in unit.loads:
                    self._live.pop(id(load), None)
            if was == RUNNING:
                self._running[unit.request_type] -= 1
                self._total_running -= 1
            waiting = self._queued
        if was == RUNNING and waiting:
            self._pump()

    # -- cancellation --------------------------------------------------
    def cancel_image(self, image_id: str) -> bool:
        """Cancel every unfinished load of ``image_id``."""
        with self._lock:
            matching = [load for load in self._live.values() if load.image_id == image_id]
        return sum(load.cancel() for load in matching) > 0

    def cancel_all(self) -> int:
        """Cancel every queued and running load; returns how many."""
        with self._lock:
            loads = list(self._live.values())
        # Queued first, so cancelling a running one does not start a queued one.
        loads.sort(key=lambda load: load.state != QUEUED)
        return sum(load.cancel() for load in loads)

    def pending(self) -> int:
        """Loads queued or running."""
        return len(self._live)
