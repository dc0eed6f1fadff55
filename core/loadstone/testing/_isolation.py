"""loadstone's process-wide state, put back after a test: :func:`isolated`, :func:`restore_defaults`.

loadstone keeps singletons (``loadstone.cache``, ``pool``, ``events``,
``metadata``, the scheme registry, plugin settings), so a test that
registers a loader, shrinks the cache or subscribes to an event changes what
the next test sees.  These functions undo that without reaching into
loadstone's private modules from the test suite.

Plugin discovery is left alone by both (importing plugins is slow and most
tests do not touch it); :func:`reset_plugins` forgets it explicitly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .. import _state
from .._api import cancel_load_all
from .._cache import DEFAULT_MAXIMUM_SIZE_BYTES
from .._request_type import RequestType
from ..config import configs

__all__ = ["isolated", "restore_defaults", "reset_plugins"]

_LIMIT_KEYS: tuple[RequestType | None, ...] = (None, *RequestType)


@dataclass(frozen=True)
class _Saved:
    """What :func:`isolated` puts back."""

    cache_maximum: int
    limits: dict[RequestType | None, int]
    loaders: dict[str, Any]
    unknown_loader: Any
    subscribers: dict[str, tuple[Any, ...]]
    providers: tuple[tuple[int, int, Any], ...]
    settings: dict[str, Any]

    @classmethod
    def take(cls) -> _Saved:
        pool = _state.pool
        loaders, unknown = _state.registry.user_registrations()
        return cls(
            cache_maximum=_state.cache.get_maximum_size_bytes(),
            limits={kind: pool.get_max_concurrent(kind) for kind in _LIMIT_KEYS},
            loaders=loaders,
            unknown_loader=unknown,
            subscribers=_state.events._snapshot(),
            providers=_state.metadata._snapshot(),
            settings={name: config._snapshot() for name, config in configs().items()},
        )

    def put_back(self) -> None:
        _stop_loads()
        cache = _state.cache
        cache.purge()
        cache.set_maximum_size_bytes(self.cache_maximum)
        pool = _state.pool
        for kind, limit in self.limits.items():
            pool.set_max_concurrent(kind, limit)
        _state.registry.restore_user_registrations(self.loaders, self.unknown_loader)
        _state.events._restore(self.subscribers)
        self._put_back_providers()
        for name, config in configs().items():
            if name in self.settings:
                config._put_back(self.settings[name])
            else:  # made during the test (a plugin imported by it): back to its defaults
                config.reset()

    def _put_back_providers(self) -> None:
        """The user's providers as they were; the plugins' as discovery left them."""
        metadata = _state.metadata
        owned = {id(provider) for provider in _state.registry.plugin_providers()}
        before = {id(entry[2]): entry for entry in self.providers}
        for priority, _, provider in metadata._snapshot():
            if id(provider) in owned:
                continue
            saved = before.get(id(provider))
            if saved is None:
                metadata.remove_provider(provider)
            elif saved[0] != priority:
                metadata.add_provider(provider, saved[0])
        now = {id(entry[2]) for entry in metadata._snapshot()}
        for priority, _, provider in self.providers:
            if id(provider) not in now and id(provider) not in owned:
                metadata.add_provider(provider, priority)


def _stop_loads() -> None:
    cancel_load_all()


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """Run a block, then put loadstone's global state back as it was before it.

    Afterwards: every load still running is cancelled, the cache is purged
    and its maximum restored, the pool's limits, the user's loaders (and
    unknown loader), the event subscriptions, the user's metadata providers
    and every plugin's settings (:class:`loadstone.config.PluginConfig`) are
    as they were.  Plugins discovered meanwhile stay discovered.  The pytest
    fixture ``loadstone_isolated`` is this around a test.
    """
    saved = _Saved.take()
    try:
        yield
    finally:
        saved.put_back()


def restore_defaults() -> None:
    """Put loadstone's global state back to what a fresh process has (plugins stay discovered).

    Cancels every load, purges the cache and sets its maximum back to 1 GiB,
    puts the pool's default limits back, unregisters every loader that
    :func:`loadstone.register_image_loader` registered (and the unknown
    loader), removes every event subscription and resets every plugin's
    settings to its defaults and environment.  Metadata providers added with
    ``loadstone.metadata.add_provider`` stay: remove your own.
    """
    _stop_loads()
    cache = _state.cache
    cache.purge()
    cache.set_maximum_size_bytes(DEFAULT_MAXIMUM_SIZE_BYTES)
    _state.pool.reset_limits()
    _state.registry.clear_user_loaders()
    _state.events.clear()
    for config in configs().values():
        config.reset()


def reset_plugins() -> None:
    """Forget every discovered or hand-registered plugin, with its loaders and metadata providers.

    The next use discovers the installed plugins again, reading the
    environment (``LOADSTONE_DISABLE_PLUGINS``, …) afresh.  Modules already
    imported stay in ``sys.modules``.  Loaders the user registered stay.
    """
    _state.registry.reset()
