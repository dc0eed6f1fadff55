"""Helpers of the loadstone-dask tests (not fixtures: those are in conftest.py).

A module of its own, with a name no other test folder uses, because the
workers import the test modules that define functions they run, and those
modules import this one: ``conftest`` would be ambiguous there.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "wado"))  # the Orthanc helpers

from dicom_series import ct_series
from orthanc import FakeServer, OrthancServer, Reply, basic_auth

import loadstone

__all__ = ["CLUSTER_TIMEOUT", "FakeServer", "OrthancServer", "Reply", "Series", "basic_auth", "local_stack",
           "pixel_mean", "start_cluster", "upload_series", "worker_pids"]

#: Bounds every cluster start, wait and stop.
CLUSTER_TIMEOUT = 60


@contextlib.contextmanager
def start_cluster(n_workers: int = 2, threads_per_worker: int = 2, **kwargs: Any) -> Iterator[Any]:
    """A LocalCluster of worker processes on 127.0.0.1 and a client, both closed on exit."""
    from distributed import Client, LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                               host="127.0.0.1", dashboard_address=":0", memory_limit="2GiB",
                               silence_logs=40, **kwargs)
        client = Client(cluster, timeout=CLUSTER_TIMEOUT, set_as_default=False)
        try:
            client.wait_for_workers(n_workers, timeout=CLUSTER_TIMEOUT)
            yield client
        finally:
            client.close(timeout=CLUSTER_TIMEOUT)
            cluster.close(timeout=CLUSTER_TIMEOUT)


def worker_pids(client: Any) -> set[int]:
    """The process ids of the cluster's workers."""
    return set(client.run(os.getpid).values())


def pixel_mean(image: loadstone.Image) -> float:
    """The mean stored value of an image (a function for ``map_images``)."""
    return float(image.pixel_data.mean())


def local_stack(image_ids: list[str], **options: Any) -> np.ndarray:
    """What the user would load without dask: ``load_images`` and ``np.stack``."""
    loads = loadstone.load_images(image_ids, **options)
    return np.stack([load.result(60).pixel_data for load in loads])


@dataclass(frozen=True)
class Series:
    """A synthetic CT series as the tests see it."""

    series_id: str
    image_ids: list[str]


def upload_series(server: OrthancServer, slices: int, size: int = 64,
                  frames: int = 1) -> tuple[str, str, list[str]]:
    """Store a synthetic series in Orthanc: ``(study, series, SOP instance UIDs)``."""
    import io

    import pydicom

    study, series, objects = ct_series(slices, size, frames)
    sops = []
    for data in objects:
        answer = server.upload(data)
        assert answer.get("Status") in ("Success", "AlreadyStored"), answer
        sops.append(str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).SOPInstanceUID))
    return study, series, sops
