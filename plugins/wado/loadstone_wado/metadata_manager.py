"""Old home of the ``wadors:`` metadata manager; it lives in :mod:`loadstone_wado.net.metadata_store`."""

from __future__ import annotations

from .net.metadata_store import (
    InstanceMetadata,
    add,
    entry,
    fetch,
    fetch_series,
    get,
    instance_count,
    purge,
    remove,
)

__all__ = ["InstanceMetadata", "add", "get", "remove", "purge", "fetch", "fetch_series", "entry",
           "instance_count"]
