"""Shared fixtures of the loadstone-wado tests (no Orthanc here: see ``orthanc.py``).

Every test starts from the plugin's default state: the configuration, the
dataset cache, the file manager and the remembered headers are reset after
each test (the root ``tests/conftest.py`` resets loadstone's own state).
The decode pool is process-wide and slow to start, so it is only stopped by
the tests that start it (``decode_pool_started``) and at the end of the session.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loadstone_wado import config, file_manager
from loadstone_wado.part10 import dataset_cache
from loadstone_wado.pixels import pool as decode_pool
from loadstone_wado.schemes import dicomfile


@pytest.fixture(autouse=True)
def _wado_state() -> Iterator[None]:
    """Undo what a test changed in the wado plugin's process-wide state."""
    yield
    config.reset()
    dataset_cache.set_maximum_size_bytes(None)
    dataset_cache.purge()
    file_manager.purge()
    dicomfile.forget_headers()


@pytest.fixture(scope="session", autouse=True)
def _stop_decode_pool() -> Iterator[None]:
    """No decode-pool process outlives the test session."""
    yield
    decode_pool.shutdown()


@pytest.fixture
def decode_pool_started() -> Iterator[decode_pool.DecodePool]:
    """A running decode pool of 2 workers (``decode_pool='always'``), stopped after the test."""
    previous = config.configure(decode_pool="always", decode_workers=2)
    decode_pool.shutdown()
    pool = decode_pool.start(wait=True)
    assert pool.ready_workers == 2, "the decode pool did not start"
    try:
        yield pool
    finally:
        decode_pool.shutdown()
        config.restore(previous)


@pytest.fixture(scope="session")
def testdata() -> Callable[[str], str]:
    """``testdata(name)``: the path of one of pydicom's offline test files."""
    from pydicom.data import get_testdata_file

    def find(name: str) -> str:
        path = get_testdata_file(name, download=False)
        if path is None:
            pytest.skip(f"pydicom test file {name} is not installed")
        return str(path)

    return find


@pytest.fixture(scope="session")
def synthetic_files(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, int], list[Path]]:
    """``synthetic_files(transfer_syntax, count)``: a small CT series (64x64) written once per session."""
    import synthetic


    made: dict[tuple[str, int], list[Path]] = {}

    def make(transfer_syntax: str, count: int = 4) -> list[Path]:
        key = (transfer_syntax, count)
        if key not in made:
            folder = tmp_path_factory.mktemp(f"series-{transfer_syntax}-{count}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                made[key] = synthetic.write_series(folder, count, rows=64, columns=64,
                                                    transfer_syntax=transfer_syntax)
        return made[key]

    return make
