"""Shared test set-up: every test starts from loadstone's default global state.

loadstone keeps process-wide singletons (cache, pool, registry, events); a test
that registers a loader, shrinks the cache or subscribes to an event must not
change what the next test sees.  Plugin discovery is *not* reset here (it is
slow and most tests do not touch it); tests that need a fresh discovery ask
for it (see ``tests/core/conftest.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

DEFAULT_CACHE_BYTES = 1 << 30


def _restore_global_state() -> None:
    import loadstone
    from loadstone import _state
    from loadstone._pool import DEFAULT_LIMITS, DEFAULT_TOTAL_LIMIT

    loadstone.cancel_load_all()
    loadstone.cache.purge()
    loadstone.cache.set_maximum_size_bytes(DEFAULT_CACHE_BYTES)
    pool = loadstone.pool
    pool.set_max_concurrent(None, DEFAULT_TOTAL_LIMIT)
    for request_type, limit in DEFAULT_LIMITS.items():
        pool.set_max_concurrent(request_type, limit)
    _state.registry._user_loaders.clear()
    loadstone.register_unknown_image_loader(None)
    loadstone.events.clear()


@pytest.fixture(autouse=True)
def _isolate_loadstone_state() -> Iterator[None]:
    """Undo global changes a test made: loads, cache, pool limits, user loaders, events."""
    yield
    _restore_global_state()
