"""loadstone's pytest plugin: fixtures for testing loaders and code that loads images.

Registered through the ``pytest11`` entry point of the ``loadstone``
distribution, so installing loadstone makes these fixtures available to
every test suite, with nothing to add to ``conftest.py`` (``-p no:loadstone``
turns them off).  Importing this module imports little: pytest loads it in
every session.

``loadstone_isolated``
    Puts loadstone's global state back after the test
    (:func:`loadstone.testing.isolated`): loads cancelled, cache purged, pool
    limits, user loaders, event subscriptions, user metadata providers and
    plugin settings as they were.  Every contract check uses it.
``loadstone_fresh_plugins``
    Plugin discovery forgotten before and after the test
    (:func:`loadstone.testing.reset_plugins`): the test discovers afresh.
``loadstone_without_plugins``
    No plugin discovered (``LOADSTONE_DISABLE_PLUGIN_AUTOLOAD=1``) for the test.
``loadstone_scheme``
    ``loadstone_scheme(loader, prefix="test") -> scheme``: ``loader``
    registered under a scheme no other test uses; unregistered afterwards.
``loadstone_provider``
    ``loadstone_provider(provider, priority=0)``: a metadata provider added
    for the test; removed afterwards.
``loadstone_load``
    ``loadstone_load(image_id, *, timeout=30, **options) -> Image``: load (not
    cached), wait at most ``timeout`` and check the image
    (:func:`loadstone.testing.check_image`); loads still running at the end
    of the test are cancelled.
``loadstone_load_error``
    ``loadstone_load_error(image_id, expected=LoadstoneError, *, timeout=30,
    **options) -> LoadstoneError``: the load must fail with ``expected``
    (:func:`loadstone.testing.check_failure`); returns the error.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

import loadstone
from loadstone import testing  # its checks import numpy on first use, not with this plugin

from ._isolation import isolated, reset_plugins

if TYPE_CHECKING:
    from .._image import Image
    from .._load_object import ImageLoadObject

__all__ = [
    "loadstone_isolated",
    "loadstone_fresh_plugins",
    "loadstone_without_plugins",
    "loadstone_scheme",
    "loadstone_provider",
    "loadstone_load",
    "loadstone_load_error",
]

_numbers = itertools.count()


@pytest.fixture
def loadstone_isolated() -> Iterator[None]:
    """loadstone's global state put back after the test (see :func:`loadstone.testing.isolated`)."""
    with isolated():
        yield


@pytest.fixture
def loadstone_fresh_plugins() -> Iterator[None]:
    """Plugin discovery forgotten before and after the test: the test discovers afresh."""
    reset_plugins()
    yield
    reset_plugins()


@pytest.fixture
def loadstone_without_plugins(monkeypatch: pytest.MonkeyPatch, loadstone_fresh_plugins: None) -> None:
    """No plugin is discovered during the test (register loaders and plugins by hand)."""
    monkeypatch.setenv("LOADSTONE_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def loadstone_scheme() -> Iterator[Callable[..., str]]:
    """``loadstone_scheme(loader, prefix="test") -> scheme``: a user loader on a scheme of its own."""
    registered: list[str] = []

    def register(loader: Any, prefix: str = "test") -> str:
        scheme = f"{prefix}{next(_numbers)}x{uuid.uuid4().hex[:8]}"
        loadstone.register_image_loader(scheme, loader)
        registered.append(scheme)
        return scheme

    yield register
    for scheme in registered:
        loadstone.unregister_image_loader(scheme)


@pytest.fixture
def loadstone_provider() -> Iterator[Callable[..., Any]]:
    """``loadstone_provider(provider, priority=0) -> provider``: a metadata provider for the test."""
    added: list[Any] = []

    def add(provider: Any, priority: int = 0) -> Any:
        loadstone.metadata.add_provider(provider, priority)
        added.append(provider)
        return provider

    yield add
    for provider in added:
        loadstone.metadata.remove_provider(provider)


@pytest.fixture
def _loadstone_started() -> Iterator[list[ImageLoadObject]]:
    """The loads a fixture started; cancelled at teardown if still running."""
    started: list[ImageLoadObject] = []
    yield started
    for load_object in started:
        load_object.cancel()


@pytest.fixture
def loadstone_load(_loadstone_started: list[ImageLoadObject]) -> Callable[..., Image]:
    """``loadstone_load(image_id, *, timeout=30, **options) -> Image``, checked with ``check_image``."""

    def load(image_id: str, *, timeout: float = 30.0, **options: Any) -> Image:
        load_object = loadstone.load_image(image_id, **options)
        _loadstone_started.append(load_object)
        return testing.check_image(load_object.result(timeout), image_id)

    return load


@pytest.fixture
def loadstone_load_error(_loadstone_started: list[ImageLoadObject]) -> Callable[..., BaseException]:
    """``loadstone_load_error(image_id, expected=LoadstoneError, *, timeout=30, **options)``: its error."""

    def load_error(image_id: str, expected: type[BaseException] = loadstone.LoadstoneError, *,
                   timeout: float = 30.0, **options: Any) -> BaseException:
        try:  # an id without a loader fails at once, the rest through the load object
            load_object = loadstone.load_image(image_id, **options)
            _loadstone_started.append(load_object)
            load_object.result(timeout)
        except BaseException as error:
            testing.check_failure(error, expected, image_id)
            return error
        raise AssertionError(f"{image_id!r} loaded, but {expected.__name__} was expected")

    return load_error
