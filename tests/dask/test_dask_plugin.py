"""The plugin's shape and settings: cheap import, one config style, the worker cache bound."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from dask_helpers import Series, local_stack, pixel_mean

import loadstone
import loadstone_dask
from loadstone_dask import config
from loadstone_dask.options import ShippedOptions, ship_options

pytestmark = pytest.mark.integration  # real clusters (and servers) on 127.0.0.1


def test_importing_the_plugin_imports_no_dask() -> None:
    code = ("import sys, loadstone, loadstone_dask, loadstone_dask.plugin; "
            "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_settings_in_the_one_config_style(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config in loadstone.plugin_configs()
    assert config.get() == loadstone_dask.Settings()
    with config.override(retries=5, chunk_bytes=1 << 20):
        assert (config.retries, config.chunk_bytes) == (5, 1 << 20)
    assert config.retries == 3
    bad_values = ({"chunk_bytes": 0}, {"retries": -1}, {"cache_fraction": 2.0}, {"fetch_images_per_task": 0})
    for bad in bad_values:
        with pytest.raises(ValueError):
            config.configure(**bad)
    previous = config.set_text("cache_fraction", "0.25")
    assert config.cache_fraction == 0.25
    config.restore(previous)
    monkeypatch.setenv("LOADSTONE_DASK_CACHE_BYTES", str(64 << 20))
    config.reset()
    try:
        assert config.cache_bytes == 64 << 20
    finally:
        monkeypatch.delenv("LOADSTONE_DASK_CACHE_BYTES")
        config.reset()


def test_options_travel_once_per_graph_and_are_shared_on_a_worker() -> None:
    import pickle

    import cloudpickle

    async def hook(request: Any) -> None:
        request.headers["X-Test"] = "1"

    shipped = ship_options({"headers": {"A": "b"}, "before_send": hook, "timeout": 5.0})
    first, second = (pickle.loads(cloudpickle.dumps(shipped)) for _ in range(2))
    assert isinstance(first, ShippedOptions) and first is second is shipped  # one object per process
    assert first.options["headers"] == {"A": "b"} and first.options["timeout"] == 5.0


def test_the_worker_cache_is_bounded_and_released(client: Any, dicomfile_series: Series) -> None:
    ids = dicomfile_series.image_ids
    with config.override(cache_bytes=8 << 20):
        x = loadstone_dask.from_image_ids(ids, images_per_chunk=4)
        np.testing.assert_array_equal(x.compute(), local_stack(ids))
        states = client.run(loadstone_dask.worker_state)
    assert {s["cache_maximum_bytes"] for s in states.values() if s["cache_maximum_bytes"] == 8 << 20}
    assert all(s["images_cached"] == 0 and s["cache_bytes"] == 0 for s in states.values())
    # Back to the default bound (a tenth of each worker's 2 GiB) with the next graph's settings.
    loadstone_dask.map_images(pixel_mean, ids, images_per_task=1)
    states = client.run(loadstone_dask.worker_state)
    assert {s["cache_maximum_bytes"] for s in states.values()} == {int(0.1 * 2 * 2**30)}
