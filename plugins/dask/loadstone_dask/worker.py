"""loadstone inside a dask worker: the worker plugin, cancellation of a task's loads, the cache bound.

Every task of this plugin runs its loads in a :func:`task_scope`.  On a
``distributed`` worker the scope makes sure the :class:`LoadstonePlugin`
worker plugin is installed (the first task on each worker adds it, so a
graph built before any client existed still gets it), and records which
image ids the running task is loading.  When the scheduler drops a running
task (``client.cancel``, a ``KeyboardInterrupt`` in ``compute`` that releases
the futures, a lost client), the worker moves it from ``executing`` to
``cancelled`` and tells its plugins; ours then cancels that task's queued
and running loadstone loads, whose sockets loadstone shuts, so the task
ends at once and no worker keeps fetching.  Outside a worker (dask's local
schedulers) the scope does nothing.

The plugin also bounds the worker's loadstone image cache (a fraction of the
worker's memory limit, :mod:`loadstone_dask.config`), and tasks drop the
images they loaded from it as soon as their pixels are in the chunk that
dask holds.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from distributed import WorkerPlugin, get_worker
from distributed.utils import sync

import loadstone
from loadstone.errors import LoadstoneError
from loadstone.toolkit import LRUCache, SingleFlight

from .config import Settings

__all__ = ["PLUGIN_NAME", "LoadstonePlugin", "TaskScope", "task_scope", "cache_bytes_for", "warm_series"]

logger = logging.getLogger(__name__)

PLUGIN_NAME = "loadstone-dask"
_EXECUTING = frozenset({"executing", "long-running"})
_DROPPED = frozenset({"cancelled", "released", "forgotten"})


def cache_bytes_for(memory_limit: int | None, settings: Settings) -> int | None:
    """The loadstone cache bound for a worker with ``memory_limit`` bytes (None: leave it)."""
    if settings.cache_bytes:
        return settings.cache_bytes
    if memory_limit:
        return max(1 << 20, int(memory_limit * settings.cache_fraction))
    return None


@dataclass
class TaskScope:
    """What one running task is loading, and whether it was cancelled."""

    key: Any
    image_ids: list[str] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def loading(self, image_ids: Iterable[str]) -> None:
        """Say which ids the task loads next (cancelled at once if the task already was)."""
        ids = list(image_ids)
        self.image_ids.extend(ids)
        if self.cancelled.is_set():
            _cancel_ids(ids)
            raise loadstone.LoadCancelledError(f"task {self.key!r} was cancelled",
                                               image_id=ids[0] if ids else None)

    def cancel(self) -> None:
        """Stop every load of the task (from the worker's event loop)."""
        self.cancelled.set()
        _cancel_ids(self.image_ids)


def _cancel_ids(image_ids: Iterable[str]) -> None:
    for image_id in dict.fromkeys(image_ids):
        loadstone.cancel_load_image(image_id)


class _Registry:
    """The scopes of the tasks running in this process, by key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Any, TaskScope] = {}
        # Keys dropped before their task registered (a cancel racing the task's start).
        self._dropped: LRUCache[Any, bool] = LRUCache(4096)

    def enter(self, key: Any) -> TaskScope:
        scope = TaskScope(key)
        with self._lock:
            self._running[key] = scope
            if self._dropped.pop(key):
                scope.cancelled.set()
        return scope

    def leave(self, scope: TaskScope) -> None:
        with self._lock:
            if self._running.get(scope.key) is scope:
                del self._running[scope.key]

    def drop(self, key: Any) -> bool:
        with self._lock:
            scope = self._running.get(key)
            if scope is None:
                self._dropped.put(key, True)
                return False
        scope.cancel()
        return True

    def drop_all(self) -> int:
        with self._lock:
            scopes = list(self._running.values())
        for scope in scopes:
            scope.cancel()
        return len(scopes)

    def running(self) -> list[Any]:
        with self._lock:
            return list(self._running)


registry = _Registry()


class LoadstonePlugin(WorkerPlugin):  # type: ignore[misc,unused-ignore]  # WorkerPlugin is Any
    """The worker plugin: cancels a dropped task's loads, bounds and empties the cache.

    Installed by the first loadstone task on each worker; you may also
    register it yourself (``client.register_plugin(LoadstonePlugin(settings))``).
    """

    name = PLUGIN_NAME

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.memory_limit: int | None = None
        self.cache_bytes: int | None = None

    def setup(self, worker: Any) -> None:
        self.memory_limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
        self.configure(self.settings)

    def configure(self, settings: Settings) -> None:
        """Bound this worker's loadstone cache as ``settings`` say (tasks bring the client's settings)."""
        self.settings = settings
        self.cache_bytes = cache_bytes_for(self.memory_limit, settings)
        if self.cache_bytes is not None:
            loadstone.cache.set_maximum_size_bytes(self.cache_bytes)

    def teardown(self, worker: Any) -> None:
        registry.drop_all()

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if start in _EXECUTING and finish in _DROPPED and registry.drop(key):
            logger.info("cancelled the loadstone loads of dropped task %s", key)


_install_lock = threading.Lock()


def _current_worker() -> Any:
    try:
        return get_worker()
    except ValueError:  # not in a worker: dask's local schedulers
        return None


def _ensure_plugin(worker: Any, settings: Settings) -> None:
    plugin = worker.plugins.get(PLUGIN_NAME)
    if plugin is None:
        with _install_lock:
            if PLUGIN_NAME not in worker.plugins:
                sync(worker.loop, worker.plugin_add, plugin=LoadstonePlugin(settings), name=PLUGIN_NAME)
                return
            plugin = worker.plugins[PLUGIN_NAME]
    current = plugin.settings
    if (current.cache_bytes, current.cache_fraction) != (settings.cache_bytes, settings.cache_fraction):
        plugin.configure(settings)


@contextlib.contextmanager
def task_scope(settings: Settings) -> Iterator[TaskScope]:
    """The scope of one task's loads (cancelled with the task on a distributed worker)."""
    worker = _current_worker()
    if worker is None:
        yield TaskScope(None)
        return
    _ensure_plugin(worker, settings)
    scope = registry.enter(worker.get_current_task())
    try:
        yield scope
    finally:
        registry.leave(scope)


_expanded: LRUCache[str, bool] = LRUCache(256)  # series this worker expanded (or tried to)
_expanding: SingleFlight[str, bool] = SingleFlight()


def warm_series(series_id: str, options: Mapping[str, Any] | None = None) -> None:
    """Expand ``series_id`` once in this worker, so that its plugin learns the series' metadata in one go.

    ``options`` are the load options (credentials reach the server).  Best
    effort: a failure only means each image fetches its own metadata.
    """
    if _current_worker() is None or _expanded.get(series_id):
        return

    def expand() -> bool:
        try:
            loadstone.series_image_ids(series_id, **dict(options or {}))
        except LoadstoneError as exc:
            logger.info("could not expand series %s on this worker (%s); images fetch their own metadata",
                        series_id, exc)
        _expanded.put(series_id, True)
        return True

    _expanding.do(series_id, expand)


def release(image_ids: Iterable[str], keep: Iterable[str] = ()) -> None:
    """Drop ``image_ids`` from this process's loadstone cache (the chunk now holds the pixels)."""
    kept = set(keep)
    for image_id in image_ids:
        if image_id not in kept:
            loadstone.cache.remove_image_load_object(image_id)


def worker_state() -> dict[str, Any]:
    """What a worker's loadstone is doing (for ``client.run``; tests and diagnostics)."""
    import os

    info = loadstone.cache.get_cache_info()
    stats = loadstone.pool.stats()
    return {
        "pid": os.getpid(),
        "running_tasks": [str(key) for key in registry.running()],
        "loads_running": sum(kind["running"] for kind in stats.values()),
        "loads_queued": sum(kind["queued"] for kind in stats.values()),
        "cache_maximum_bytes": info.maximum_size_bytes,
        "cache_bytes": info.cache_size_bytes,
        "images_cached": info.number_of_images_cached,
    }
