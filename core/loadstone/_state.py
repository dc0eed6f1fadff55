"""The process-wide singletons behind the module-level API, built on first use.

Building them imports the pool, cache and plugin machinery; deferring that
keeps ``import loadstone`` cheap.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cache import ImageCache
    from ._events import EventBus
    from ._metadata import MetadataRegistry
    from ._plugins import PluginRegistry
    from ._pool import RequestPool

    events: EventBus
    metadata: MetadataRegistry
    cache: ImageCache
    pool: RequestPool
    registry: PluginRegistry

__all__ = ["events", "metadata", "cache", "pool", "registry"]

_NAMES = frozenset(__all__)
_lock = threading.Lock()


def _build() -> None:
    from ._cache import ImageCache
    from ._events import EventBus
    from ._metadata import MetadataRegistry
    from ._plugins import PluginRegistry
    from ._pool import RequestPool

    events = EventBus()
    metadata = MetadataRegistry()
    registry = PluginRegistry(metadata)
    globals().update(
        events=events,
        metadata=metadata,
        cache=ImageCache(events=events),
        pool=RequestPool(events=events),
        registry=registry,
    )


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _lock:
        if name not in globals():
            _build()
    return globals()[name]
