"""A thread-safe LRU mapping bounded by a total size: bytes, or one per entry.

The image cache, the wado plugin's dataset cache and every small memo table
are this one structure with a different ``size_of``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["LRUCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """Least recently used entries go first once the sizes add up past ``maximum``.

    ``size_of(value)`` gives an entry's size (default 1: a count-bounded
    cache).  ``can_evict(key, value)`` may keep an entry (a pending load has
    nothing to free yet).  ``on_evict(key, value)`` runs for entries evicted
    to make room or by a smaller ``maximum``, outside the lock; not for
    :meth:`pop` or :meth:`clear`, whose callers get the values themselves.
    A value larger than ``maximum`` on its own is not stored.
    """

    def __init__(
        self,
        maximum: int,
        *,
        size_of: Callable[[V], int] | None = None,
        can_evict: Callable[[K, V], bool] | None = None,
        on_evict: Callable[[K, V], object] | None = None,
    ) -> None:
        _check_maximum(maximum)
        self._lock = threading.RLock()
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._maximum = int(maximum)
        self._total = 0
        self._size_of = size_of
        self._can_evict = can_evict
        self._on_evict = on_evict

    # -- sizes -----------------------------------------------------------
    @property
    def maximum(self) -> int:
        """The bound on the total size."""
        return self._maximum

    @maximum.setter
    def maximum(self, value: int) -> None:
        _check_maximum(value)
        with self._lock:
            self._maximum = int(value)
            evicted = self._evict(0)
        self._evicted(evicted)

    @property
    def total(self) -> int:
        """The sizes of the entries, added up."""
        return self._total

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def keys(self) -> list[K]:
        """Keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    def items(self) -> list[tuple[K, V]]:
        """(key, value) pairs, least recently used first."""
        with self._lock:
            return [(key, entry[0]) for key, entry in self._entries.items()]

    # -- access ----------------------------------------------------------
    def get(self, key: K, default: V | None = None) -> V | None:
        """The value (marked recently used), or ``default``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            self._entries.move_to_end(key)
            return entry[0]

    def peek(self, key: K, default: V | None = None) -> V | None:
        """The value without touching its recency, or ``default``."""
        entry = self._entries.get(key)
        return default if entry is None else entry[0]

    def size(self, key: K) -> int | None:
        """The size an entry counts for, or None."""
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V, size: int | None = None) -> bool:
        """Store ``value`` (replacing any under ``key``); False when it is too large to keep."""
        if size is None:
            size = 1 if self._size_of is None else int(self._size_of(value))
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._total -= old[1]
            if size > self._maximum:
                return False
            evicted = self._evict(size)
            self._entries[key] = (value, size)
            self._total += size
        self._evicted(evicted)
        return True

    def resize(self, key: K, size: int) -> bool:
        """Change what an entry counts for (its value grew); evicts others to fit.

        False, and the entry dropped, when it no longer fits at all.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            self._total += size - entry[1]
            self._entries[key] = (entry[0], size)
            if size > self._maximum:
                del self._entries[key]
                self._total -= size
                return False
            self._entries.move_to_end(key)
            evicted = self._evict(0, keep=key)
        self._evicted(evicted)
        return True

    def pop(self, key: K, default: V | None = None) -> V | None:
        """Remove and return a value, or ``default``."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                return default
            self._total -= entry[1]
            return entry[0]

    def pop_if(self, key: K, value: V) -> bool:
        """Remove ``key`` only while it still holds ``value`` (identity); True if it did."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] is not value:
                return False
            del self._entries[key]
            self._total -= entry[1]
            return True

    def clear(self) -> list[tuple[K, V]]:
        """Remove every entry; returns what was there."""
        with self._lock:
            removed = [(key, entry[0]) for key, entry in self._entries.items()]
            self._entries.clear()
            self._total = 0
        return removed

    # -- eviction --------------------------------------------------------
    def _evict(self, incoming: int, keep: K | None = None) -> list[tuple[K, V]]:
        """Drop least recently used entries until ``incoming`` more fits (lock held)."""
        evicted: list[tuple[K, V]] = []
        if self._total + incoming <= self._maximum:
            return evicted
        can_evict = self._can_evict
        for key in list(self._entries):
            if self._total + incoming <= self._maximum:
                break
            value, size = self._entries[key]
            if key == keep or (can_evict is not None and not can_evict(key, value)):
                continue
            del self._entries[key]
            self._total -= size
            evicted.append((key, value))
        return evicted

    def _evicted(self, evicted: list[tuple[K, V]]) -> None:
        if self._on_evict is not None:
            for key, value in evicted:
                self._on_evict(key, value)


def _check_maximum(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"the maximum size must be an int >= 0, got {value!r}")
