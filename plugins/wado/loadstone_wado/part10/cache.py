"""Parsed Part 10 objects kept for their other frames and their metadata.

:data:`dataset_cache` keeps parsed datasets, counted in bytes against a
budget (a :class:`loadstone.toolkit.LRUCache`), so the N frames of a
multi-frame object (and its metadata) cost one parse, whether they come
from ``dicomfile:`` or ``wadouri:``; concurrent requests for one key share
one load (a :class:`loadstone.toolkit.SingleFlight`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.dataset import Dataset

from loadstone.toolkit import LRUCache, SingleFlight

from ..config import get_config
from .reader import dataset_nbytes

__all__ = ["DatasetCache", "DatasetCacheInfo", "dataset_cache"]


@dataclass(frozen=True)
class DatasetCacheInfo:
    """Sizes of :class:`DatasetCache`, as ``loadstone.cache.get_cache_info()`` gives for images."""

    maximum_size_bytes: int
    cache_size_bytes: int
    number_of_datasets_cached: int


class DatasetCache:
    """Bytes-budgeted LRU of parsed datasets; one load per key shared by concurrent callers.

    ``maximum_size_bytes=None`` follows ``config.dataset_cache_bytes``.  A
    dataset larger than the whole budget is returned but not kept.  A failed
    load leaves nothing behind; a load cancelled in one caller is retried by
    the others rather than failing them.
    """

    def __init__(self, maximum_size_bytes: int | None = None) -> None:
        self._maximum = maximum_size_bytes
        self._lock = threading.Lock()  # one budget change at a time
        # Bounded by the budget in force, set before each store (the configuration is read on use).
        self._entries: LRUCache[str, Dataset] = LRUCache(0, size_of=dataset_nbytes)
        self._loads: SingleFlight[str, Dataset] = SingleFlight()

    # -- settings ----------------------------------------------------------
    @property
    def maximum_size_bytes(self) -> int:
        """The budget in bytes."""
        if self._maximum is not None:
            return self._maximum
        return get_config().dataset_cache_bytes

    def set_maximum_size_bytes(self, maximum_size_bytes: int | None) -> None:
        """Change the budget (None: follow the configuration); evicts down to it at once."""
        if maximum_size_bytes is not None and (
                isinstance(maximum_size_bytes, bool) or not isinstance(maximum_size_bytes, int)
                or maximum_size_bytes < 0):
            raise ValueError("maximum_size_bytes must be a non-negative int or None, "
                             f"got {maximum_size_bytes!r}")
        self._maximum = maximum_size_bytes
        self._follow_budget()

    def _follow_budget(self) -> LRUCache[str, Dataset]:
        """The entries, their bound brought up to date with the budget (the configuration may change)."""
        maximum = self.maximum_size_bytes
        if self._entries.maximum != maximum:
            with self._lock:
                self._entries.maximum = maximum
        return self._entries

    def info(self) -> DatasetCacheInfo:
        """Budget, bytes used and number of datasets."""
        entries = self._follow_budget()
        return DatasetCacheInfo(entries.maximum, entries.total, len(entries))

    # -- access ------------------------------------------------------------
    def get(self, key: str) -> Dataset | None:
        """The cached dataset for ``key`` (marked recently used), or None; never loads."""
        return self._entries.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[str]:
        """Cached keys, least recently used first."""
        return self._entries.keys()

    def get_or_load(self, key: str, load: Callable[[], Dataset]) -> Dataset:
        """The dataset for ``key``: cached, being loaded by another caller (wait), or ``load()`` now."""
        ds = self._entries.get(key)
        if ds is not None:
            return ds
        return self._loads.do(key, lambda: self._load(key, load))

    def _load(self, key: str, load: Callable[[], Dataset]) -> Dataset:
        ds = self._entries.get(key)  # stored by a load that finished just before this one began
        if ds is None:
            ds = load()
            self._follow_budget().put(key, ds)
        return ds

    def put(self, key: str, ds: Dataset) -> None:
        """Store a dataset parsed elsewhere (replacing any under ``key``)."""
        self._follow_budget().put(key, ds)

    def remove(self, key: str) -> bool:
        """Forget ``key``; True if it was cached."""
        return self._entries.pop(key) is not None

    def purge(self) -> None:
        """Forget every dataset (loads in flight finish and are kept)."""
        self._entries.clear()


#: The process-wide dataset cache shared by ``dicomfile:`` and ``wadouri:``.
dataset_cache = DatasetCache()
