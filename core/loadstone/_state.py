"""The process-wide singletons behind the module-level API, built on first use.

Building them imports the pool, cache and plugin machinery (and numpy);
the builders import them when first called, which keeps ``import loadstone``
cheap.  Nothing they import imports this module back.
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
_lock = threading.RLock()


def _build_events() -> Any:
    from ._events import default_bus

    return default_bus()


def _build_metadata() -> Any:
    from ._metadata import MetadataRegistry

    metadata = MetadataRegistry()
    # Asking for metadata first must find the plugins' providers too (the registry
    # replaces this with its own preparer when it is built).
    metadata.set_preparer(lambda image_id: _get("registry").prepare_for_id(image_id))
    return metadata


def _build_cache() -> Any:
    from ._cache import ImageCache

    return ImageCache(events=_get("events"))


def _build_pool() -> Any:
    from ._pool import RequestPool

    return RequestPool(events=_get("events"))


def _build_registry() -> Any:
    from ._plugins import PluginRegistry

    return PluginRegistry(_get("metadata"))


# Each singleton is built on first use, so touching the cache does not
# import the pool or the plugin machinery.
_BUILDERS = {
    "events": _build_events,
    "metadata": _build_metadata,
    "cache": _build_cache,
    "pool": _build_pool,
    "registry": _build_registry,
}


def _get(name: str) -> Any:
    with _lock:  # an RLock: builders ask for what they depend on
        value = globals().get(name)
        if value is None:
            value = _BUILDERS[name]()
            globals()[name] = value
    return value


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _get(name)
