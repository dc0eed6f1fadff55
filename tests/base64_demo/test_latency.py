"""``config.latency``: the demo as a slow source, for trying out cancellation, timeouts and progress."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import loadstone
from loadstone import LoadCancelledError, LoadTimeoutError
from loadstone_base64_demo import config, plugin


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    config.reset()
    loadstone.cache.purge()
    yield
    config.reset()
    loadstone.cache.purge()


def test_no_latency_by_default() -> None:
    assert config.latency == 0.0
    assert "latency" not in plugin.loadstone_plugin_details()


def test_latency_delays_every_load() -> None:
    config.latency = 0.2
    started = time.monotonic()
    image = loadstone.load_image("example://ct/3").result(10)
    assert time.monotonic() - started >= 0.2
    assert image.rows == 128
    assert plugin.loadstone_plugin_details()["latency"] == "0.2 s per load (simulated)"


def test_cancel_ends_the_wait_at_once() -> None:
    with config.override(latency=30.0):
        load = loadstone.load_and_cache_image("example://ct/4")
        time.sleep(0.1)
        started = time.monotonic()
        assert load.cancel()
        with pytest.raises(LoadCancelledError):
            load.result(10)
        assert time.monotonic() - started < 2.0
    assert "example://ct/4" not in loadstone.cache


def test_timeout_ends_the_wait() -> None:
    config.latency = 30.0
    started = time.monotonic()
    with pytest.raises(LoadTimeoutError):
        loadstone.load_image("example://ct/5", timeout=0.3).result(10)
    assert time.monotonic() - started < 2.0


def test_bad_values_are_refused() -> None:
    for bad in (-1, float("nan"), float("inf"), "1", True):
        with pytest.raises(ValueError, match="latency"):
            config.latency = bad
    assert config.latency == 0.0


def test_the_environment_sets_it() -> None:
    code = "from loadstone_base64_demo import config; print(config.latency)"
    env = {"LOADSTONE_BASE64_DEMO_LATENCY": "0.25", "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0.25"
