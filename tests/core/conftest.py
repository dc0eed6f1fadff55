"""Fixtures for the core tests: unique schemes, gates, loopback sockets, fake plugins."""

from __future__ import annotations

import importlib
import itertools
import socket
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import loadstone
from loadstone.testing import reset_plugins

_scheme_numbers = itertools.count()


# -- leaks -----------------------------------------------------------------
@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Threads a test starts must be joined by its end (loadstone's own pools excepted)."""
    before = {thread.ident for thread in threading.enumerate()}
    yield
    leaked = [
        thread for thread in threading.enumerate()
        if thread.ident not in before and thread.is_alive() and not thread.name.startswith("loadstone-")
    ]
    assert not leaked, f"threads left running: {leaked}"


# -- images and loaders ----------------------------------------------------
@pytest.fixture
def make_image() -> Callable[..., loadstone.Image]:
    """``make_image(image_id, nbytes=16, **fields)``: a small grey uint8 image of exactly ``nbytes``."""

    def make(image_id: str, nbytes: int = 16, **fields: Any) -> loadstone.Image:
        pixels = (np.arange(nbytes, dtype=np.uint64) % 251).astype(np.uint8).reshape(1, nbytes)
        return loadstone.Image.from_array(image_id, pixels, **fields)

    return make


@pytest.fixture
def unique_scheme() -> Callable[[str], str]:
    """A scheme no other test uses (``prefix`` + number)."""

    def make(prefix: str = "t") -> str:
        return f"{prefix}{next(_scheme_numbers)}x{uuid.uuid4().hex[:6]}"

    return make


@pytest.fixture
def register(unique_scheme: Callable[[str], str]) -> Callable[..., str]:
    """``register(loader, scheme=None) -> scheme``: register a user loader for a fresh scheme.

    The autouse isolation fixture forgets it after the test.
    """

    def do_register(loader: Any, scheme: str | None = None) -> str:
        scheme = scheme or unique_scheme("t")
        loadstone.register_image_loader(scheme, loader)
        return scheme

    return do_register


@pytest.fixture
def gates() -> Iterator[Callable[[], threading.Event]]:
    """``gates() -> Event`` that blocked loaders wait on; every gate is opened at teardown.

    So a failing test never leaves a worker thread blocked forever.
    """
    made: list[threading.Event] = []

    def make() -> threading.Event:
        event = threading.Event()
        made.append(event)
        return event

    yield make
    for event in made:
        event.set()


@pytest.fixture
def gate(gates: Callable[[], threading.Event]) -> threading.Event:
    """One of ``gates``: an event a blocked loader waits on, opened at teardown."""
    return gates()


@pytest.fixture
def settled() -> Callable[[loadstone.ImageLoadObject, float], None]:
    """``settled(load_object, timeout)``: wait until the load settled *and* its earlier callbacks ran.

    ``result()`` wakes as soon as the promise is set, which may be a moment
    before the done callbacks (the cache's bookkeeping) finish on the
    loader's thread.  Callbacks run in registration order, so one added now
    runs after the cache's.
    """

    def wait(load_object: loadstone.ImageLoadObject, timeout: float = 10.0) -> None:
        done = threading.Event()
        load_object.promise.add_done_callback(lambda _promise: done.set())
        assert done.wait(timeout), f"{load_object!r} did not settle within {timeout} s"

    return wait


@pytest.fixture
def single_slot() -> Iterator[None]:
    """Global pool limit 1 (the isolation fixture restores the default)."""
    loadstone.pool.set_max_concurrent(None, 1)
    yield


# -- metadata and plugins ----------------------------------------------------
@pytest.fixture
def add_provider(loadstone_provider: Callable[..., Any]) -> Callable[..., Any]:
    """``add_provider(provider, priority=0)`` on ``loadstone.metadata``; removed at teardown."""
    return loadstone_provider


@pytest.fixture
def fresh_registry(loadstone_fresh_plugins: None) -> None:
    """Forget discovered and hand-registered plugins before and after the test."""


@pytest.fixture
def no_plugins(loadstone_without_plugins: None) -> None:
    """No entry-point plugins at all, whatever is installed in the environment."""


class FakeDistributions:
    """Writes ``NAME-1.0.dist-info`` folders and plugin modules into a folder on ``sys.path``.

    ``importlib.metadata`` finds them exactly as it finds pip-installed
    distributions, so discovery runs through real entry points.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []
        self.token = uuid.uuid4().hex[:8]

    def module_name(self, base: str) -> str:
        """A module name unique to this test (sys.modules would otherwise keep old ones)."""
        return f"{base}_{self.token}"

    def add(self, dist: str, entry_points: dict[str, str], modules: dict[str, str],
            requires: tuple[str, ...] = (), schemes: dict[str, str] | None = None) -> None:
        """One distribution: ``entry_points`` name → module, ``modules`` name → source.

        ``schemes`` (scheme → plugin entry-point name or distribution) become its
        ``loadstone.schemes`` entry points: the schemes it declares without being imported.
        """
        info = self.root / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        metadata = f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n"
        metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
        (info / "METADATA").write_text(metadata)
        lines = ["[loadstone]"] + [f"{name} = {module}" for name, module in entry_points.items()]
        if schemes:
            lines += ["", "[loadstone.schemes]"]
            lines += [f"{scheme} = {owner}" for scheme, owner in schemes.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for module, source in modules.items():
            (self.root / f"{module}.py").write_text(textwrap.dedent(source))
            self.modules.append(module)
        importlib.invalidate_caches()


@pytest.fixture
def fake_dists(tmp_path: Path, fresh_registry: None) -> Iterator[FakeDistributions]:
    """A folder prepended to ``sys.path`` for fake plugin distributions; undone at teardown."""
    root = tmp_path / "site"
    root.mkdir()
    fakes = FakeDistributions(root)
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield fakes
    finally:
        sys.path.remove(str(root))
        importlib.invalidate_caches()
        for module in fakes.modules:
            sys.modules.pop(module, None)
        reset_plugins()


# -- sockets -----------------------------------------------------------------
@pytest.fixture
def silent_server() -> Iterator[tuple[str, int]]:
    """A loopback TCP listener that never accepts nor sends: a client's recv blocks forever.

    The kernel completes connections into the backlog, so ``connect`` works.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()
    finally:
        listener.close()
