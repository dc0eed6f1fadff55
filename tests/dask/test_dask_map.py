"""map_images on the workers: the function runs where the image loads, only its results come back."""

from __future__ import annotations

import os
import threading
from typing import Any

import dask.bag as db
import numpy as np
import pytest
from dask_helpers import Series, local_stack, worker_pids

import loadstone_dask

pytestmark = pytest.mark.integration  # real clusters (and servers) on 127.0.0.1


def statistics(image: Any) -> tuple[int, int, int, int]:
    """(pid, min, max, sum) of one image, in exact integers."""
    pixels = image.pixel_data
    return os.getpid(), int(pixels.min()), int(pixels.max()), int(pixels.astype(np.int64).sum())


def test_map_images_runs_on_the_workers_with_exact_statistics(client: Any, dicomfile_series: Series) -> None:
    ids = dicomfile_series.image_ids
    results = loadstone_dask.map_images(statistics, ids, images_per_task=3)
    assert len(results) == len(ids)
    pids = {pid for pid, *_ in results}
    assert os.getpid() not in pids and pids <= worker_pids(client)
    stack = local_stack(ids).astype(np.int64)
    assert [tuple(result[1:]) for result in results] == [
        (int(s.min()), int(s.max()), int(s.sum())) for s in stack]
    # A reduction without shipping pixels equals the one over the lazy volume.
    means = loadstone_dask.map_images(lambda image: float(image.pixel_data.mean()), ids)
    volume = loadstone_dask.from_series(dicomfile_series.series_id)
    order = [ids.index(image_id) for image_id in volume.image_ids]
    assert float(np.mean([means[i] for i in order])) == pytest.approx(float(volume.array.mean().compute()))


def test_lazy_bag_and_explicit_client(cluster_client: Any, dicomfile_series: Series) -> None:
    ids = dicomfile_series.image_ids[:7]
    bag = loadstone_dask.map_images(statistics, ids, client=cluster_client, compute=False, images_per_task=2)
    assert isinstance(bag, db.Bag) and bag.npartitions == 4
    results = cluster_client.compute(bag).result(timeout=60)
    assert [r[1:] for r in results] == [r[1:] for r in loadstone_dask.map_images(statistics, ids)]
    assert {r[0] for r in results} <= worker_pids(cluster_client)
    assert loadstone_dask.map_images(statistics, [], client=cluster_client) == []


def test_without_a_cluster_it_runs_here(dicomfile_series: Series) -> None:
    results = loadstone_dask.map_images(statistics, dicomfile_series.image_ids[:4])
    assert {pid for pid, *_ in results} == {os.getpid()}


def test_a_function_that_cannot_be_pickled_fails_before_any_task(client: Any) -> None:
    lock = threading.Lock()

    def locked(image: Any) -> int:
        with lock:
            return 0

    with pytest.raises(TypeError, match=r"map_images function func=.*cannot be sent to the dask workers"):
        loadstone_dask.map_images(locked, ["example://ct/0"])
    with pytest.raises(TypeError, match=r"function of a loadstone\.Image"):
        loadstone_dask.map_images("mean", ["example://ct/0"])  # type: ignore[arg-type]
