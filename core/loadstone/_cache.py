"""The image cache: load objects by image id, LRU-evicted by bytes.

A pending load is cached from the moment it starts, so concurrent requests
for one id share one loader call.  Its bytes count once it succeeds; a load
that fails or is cancelled removes its own entry.  Eviction calls the load
object's ``decache``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import weakref
from typing import TYPE_CHECKING, NamedTuple

from ._load_object import ImageLoadObject
from .toolkit.lru import LRUCache

if TYPE_CHECKING:
    from ._events import EventBus
    from ._image import Image

__all__ = ["CacheInfo", "ImageCache", "DEFAULT_MAXIMUM_SIZE_BYTES"]

DEFAULT_MAXIMUM_SIZE_BYTES = 1 << 30
_log = logging.getLogger("loadstone.cache")


class CacheInfo(NamedTuple):
    """Sizes of the cache (``number_of_images_cached`` counts finished loads)."""

    maximum_size_bytes: int
    cache_size_bytes: int
    number_of_images_cached: int


class _Entry:
    __slots__ = ("load_object", "size", "loaded", "__weakref__")

    def __init__(self, load_object: ImageLoadObject) -> None:
        self.load_object = load_object
        self.size = 0
        self.loaded = False


def _failed(load_object: ImageLoadObject) -> bool:
    """True once a load ended without an image (its cache entry is on its way out)."""
    promise = load_object.promise
    return promise.done() and (promise.cancelled() or promise.exception() is not None)


class ImageCache:
    """LRU cache of :class:`ImageLoadObject` by image id, bounded in bytes (a :class:`LRUCache`)."""

    def __init__(self, maximum_size_bytes: int = DEFAULT_MAXIMUM_SIZE_BYTES,
                 events: EventBus | None = None) -> None:
        self._lock = threading.RLock()
        self._entries: LRUCache[str, _Entry] = LRUCache(
            int(maximum_size_bytes), can_evict=_evictable, on_evict=self._evicted)
        self._loaded = 0
        self._events = events

    # -- sizes -----------------------------------------------------------
    def set_maximum_size_bytes(self, maximum_size_bytes: int) -> None:
        """Change the budget, evicting least recently used images to fit."""
        if isinstance(maximum_size_bytes, bool) or int(maximum_size_bytes) < 0:
            raise ValueError("the maximum cache size must be a number of bytes >= 0")
        self._entries.maximum = int(maximum_size_bytes)

    def get_maximum_size_bytes(self) -> int:
        """The byte budget."""
        return self._entries.maximum

    def get_cache_info(self) -> CacheInfo:
        """Budget, bytes used and number of finished images."""
        with self._lock:
            return CacheInfo(self._entries.maximum, self._entries.total, self._loaded)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._entries

    def keys(self) -> list[str]:
        """Cached image ids, least recently used first."""
        return self._entries.keys()

    # -- lookup ----------------------------------------------------------
    def get_image_load_object(self, image_id: str) -> ImageLoadObject | None:
        """The cached load object (pending or done), marking it recently used."""
        entry = self._entries.get(image_id)
        if entry is None or (not entry.loaded and _failed(entry.load_object)):
            return None  # a failed load whose entry is about to go: a new load may start
        return entry.load_object

    def peek(self, image_id: str) -> ImageLoadObject | None:
        """The cached load object without touching its recency."""
        entry = self._entries.peek(image_id)
        return None if entry is None else entry.load_object

    def put_image_load_object(self, image_id: str, load_object: ImageLoadObject) -> ImageLoadObject:
        """Cache a load object; returns the one already cached for the id if any.

        The entry stays while the load runs, counts its bytes once the image
        arrives and disappears if the load fails or is cancelled.
        """
        if not isinstance(load_object, ImageLoadObject):
            raise TypeError("put_image_load_object needs an ImageLoadObject")
        with self._lock:
            existing = self._entries.get(image_id)
            if existing is not None and (existing.loaded or not _failed(existing.load_object)):
                return existing.load_object
            if existing is not None and existing.loaded:
                self._loaded -= 1
            entry = _Entry(load_object)
            self._entries.put(image_id, entry, 0)
        # A weak reference: the promise keeps its callbacks, and a strong one
        # would make promise -> callback -> entry -> promise a cycle that only
        # the garbage collector frees (large images would linger after eviction).
        entry_ref = weakref.ref(entry)

        def settled(promise: concurrent.futures.Future[Image]) -> None:
            alive = entry_ref()
            if alive is not None:
                self._settled(image_id, alive, promise)

        load_object.promise.add_done_callback(settled)
        return load_object

    def _settled(self, image_id: str, entry: _Entry,
                 promise: concurrent.futures.Future[Image]) -> None:
        if promise.cancelled() or promise.exception() is not None:
            self._entries.pop_if(image_id, entry)
            return
        image = promise.result()
        size = int(getattr(image, "size_in_bytes", 0) or 0)
        with self._lock:
            if self._entries.peek(image_id) is not entry:
                return  # removed or purged while loading
            entry.size = size
            entry.loaded = True
            self._loaded += 1
            kept = self._entries.resize(image_id, size)  # evicts others to make room
            if not kept:
                self._loaded -= 1  # too big to cache at all; the caller still gets it
        events = self._events
        if events is None:
            return
        if not kept:
            events.trigger(events.IMAGE_CACHE_FULL, self._full_detail(image_id, size))
        elif events.has_subscribers(events.IMAGE_CACHE_IMAGE_ADDED):
            events.trigger(events.IMAGE_CACHE_IMAGE_ADDED,
                           {"image_id": image_id, "size_in_bytes": size, "image": image})

    def _full_detail(self, image_id: str, size: int) -> dict[str, object]:
        return {"image_id": image_id, "size_in_bytes": size, "maximum_size_bytes": self._entries.maximum,
                "cache_size_bytes": self._entries.total}

    def _evicted(self, image_id: str, entry: _Entry) -> None:
        with self._lock:
            self._loaded -= 1  # only finished images are evicted
        self._removed(image_id, entry)

    def _removed(self, image_id: str, entry: _Entry) -> None:
        decache = entry.load_object.decache
        if decache is not None:
            try:
                decache()
            except Exception:
                _log.exception("decache of %r failed", image_id)
        if self._events is not None and entry.loaded:
            self._events.trigger(self._events.IMAGE_CACHE_IMAGE_REMOVED,
                                 {"image_id": image_id, "size_in_bytes": entry.size})

    # -- removal ---------------------------------------------------------
    def remove_image_load_object(self, image_id: str) -> bool:
        """Drop one entry (calling ``decache``); False if it was not cached."""
        with self._lock:
            entry = self._entries.pop(image_id)
            if entry is None:
                return False
            if entry.loaded:
                self._loaded -= 1
        self._removed(image_id, entry)
        return True

    def purge(self) -> int:
        """Drop every entry; returns how many."""
        with self._lock:
            entries = self._entries.clear()
            self._loaded = 0
        for image_id, entry in entries:
            self._removed(image_id, entry)
        return len(entries)

    # Cornerstone-style aliases
    purge_cache = purge


def _evictable(image_id: str, entry: _Entry) -> bool:
    return entry.loaded  # a pending load has no bytes to free yet
