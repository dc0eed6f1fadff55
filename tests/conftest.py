"""Shared test set-up: every test leaves loadstone's global state as it found it.

loadstone keeps process-wide singletons (cache, pool, registry, events); a test
that registers a loader, shrinks the cache or subscribes to an event must not
change what the next test sees.  The ``loadstone_isolated`` fixture of
loadstone's own pytest plugin (``loadstone.testing.pytest_plugin``, registered
by installing loadstone) puts it back after every test.  Plugin discovery is
*not* reset (it is slow and most tests do not touch it); tests that need a
fresh discovery ask for it (``loadstone_fresh_plugins``).
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolate_loadstone_state(loadstone_isolated: None) -> None:
    """Undo global changes a test made: loads, cache, pool limits, user loaders, events, settings."""
