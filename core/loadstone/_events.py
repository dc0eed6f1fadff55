"""The event bus: ``subscribe(event, callback) -> unsubscribe``.

Callbacks run synchronously on the thread that triggers the event; one that
raises is logged and never breaks a load.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .toolkit.names import check_name

__all__ = [
    "EventBus",
    "default_bus",
    "IMAGE_LOADED",
    "IMAGE_LOAD_FAILED",
    "IMAGE_CACHE_IMAGE_ADDED",
    "IMAGE_CACHE_IMAGE_REMOVED",
    "IMAGE_CACHE_FULL",
    "IMAGE_LOAD_PROGRESS",
]

IMAGE_LOADED = "IMAGE_LOADED"
IMAGE_LOAD_FAILED = "IMAGE_LOAD_FAILED"
IMAGE_CACHE_IMAGE_ADDED = "IMAGE_CACHE_IMAGE_ADDED"
IMAGE_CACHE_IMAGE_REMOVED = "IMAGE_CACHE_IMAGE_REMOVED"
IMAGE_CACHE_FULL = "IMAGE_CACHE_FULL"
IMAGE_LOAD_PROGRESS = "IMAGE_LOAD_PROGRESS"

KNOWN_EVENTS = (IMAGE_LOADED, IMAGE_LOAD_FAILED, IMAGE_CACHE_IMAGE_ADDED, IMAGE_CACHE_IMAGE_REMOVED,
                IMAGE_CACHE_FULL, IMAGE_LOAD_PROGRESS)

EventCallback = Callable[[str, dict[str, Any]], Any]

_log = logging.getLogger("loadstone.events")


class EventBus:
    """Named events with any number of subscribers each."""

    IMAGE_LOADED = IMAGE_LOADED
    IMAGE_LOAD_FAILED = IMAGE_LOAD_FAILED
    IMAGE_CACHE_IMAGE_ADDED = IMAGE_CACHE_IMAGE_ADDED
    IMAGE_CACHE_IMAGE_REMOVED = IMAGE_CACHE_IMAGE_REMOVED
    IMAGE_CACHE_FULL = IMAGE_CACHE_FULL
    IMAGE_LOAD_PROGRESS = IMAGE_LOAD_PROGRESS

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Copy-on-write tuples: triggering reads without taking the lock.
        self._subscribers: dict[str, tuple[EventCallback, ...]] = {}
        self._known: set[str] = set(KNOWN_EVENTS)

    def declare(self, event: str) -> None:
        """Make a custom event name known (a plugin's own events)."""
        self._known.add(event)

    def known_events(self) -> list[str]:
        """The event names loadstone and its plugins trigger."""
        return sorted(self._known)

    def subscribe(self, event: str, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event, detail)`` on each ``event``; returns an unsubscribe function.

        A name that looks like a typo of a known event (``IMAGE_LODED``) is a
        ``ValueError`` with a suggestion; other new names are custom events.
        """
        if not callable(callback):
            raise TypeError("callback must be callable")
        if not isinstance(event, str):
            raise TypeError(f"an event name is a str, got {type(event).__name__}")
        check_name(event, self._known, "event")
        with self._lock:
            self._subscribers[event] = (*self._subscribers.get(event, ()), callback)

        def unsubscribe() -> None:
            with self._lock:
                current = list(self._subscribers.get(event, ()))
                if callback in current:
                    current.remove(callback)
                    self._subscribers[event] = tuple(current)

        return unsubscribe

    def has_subscribers(self, event: str) -> bool:
        """Whether triggering ``event`` would call anyone (lets hot paths skip building details)."""
        return bool(self._subscribers.get(event))

    def trigger(self, event: str, detail: dict[str, Any]) -> None:
        """Deliver ``detail`` to every subscriber of ``event``."""
        for callback in self._subscribers.get(event, ()):
            try:
                callback(event, detail)
            except Exception:
                _log.exception("event callback %r for %s raised", callback, event)

    def clear(self) -> None:
        """Remove every subscriber (tests)."""
        with self._lock:
            self._subscribers.clear()

    def _snapshot(self) -> dict[str, tuple[EventCallback, ...]]:
        """Every subscription (for :mod:`loadstone.testing`, which puts it back with :meth:`_restore`)."""
        with self._lock:
            return dict(self._subscribers)

    def _restore(self, subscribers: dict[str, tuple[EventCallback, ...]]) -> None:
        with self._lock:
            self._subscribers = dict(subscribers)


_default: EventBus | None = None
_default_lock = threading.Lock()


def default_bus() -> EventBus:
    """The process-wide bus (``loadstone.events``)."""
    global _default
    bus = _default
    if bus is None:
        with _default_lock:
            if _default is None:
                _default = EventBus()
            bus = _default
    return bus
