"""Fixtures of the loadstone-dask tests: real ``distributed.LocalCluster``s on 127.0.0.1, and their data.

The shared cluster (2 worker processes, 2 threads each) lives for the
session: starting one costs seconds.  Tests that break a cluster (a killed
worker, a worker without a plugin) start their own with
:func:`start_cluster`, and every cluster is closed at teardown, bounded in
time.  Orthanc comes from the WADO tests' fixtures (``tests/wado/orthanc.py``,
imported by name, one server per session); the series are the synthetic CTs
of ``tests/dicom_series.py``.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "wado"))  # the Orthanc fixtures

from dicom_series import ct_series, write_series
from orthanc import (  # noqa: F401 - fixtures, re-exported for the tests of this folder
    FakeServer,
    OrthancServer,
    basic_auth,
    fake_server,
    orthanc_auth_server,
    orthanc_server,
)

import loadstone

pytestmark = pytest.mark.integration

#: Bounds every cluster start, wait and stop.
CLUSTER_TIMEOUT = 60


@pytest.fixture(autouse=True)
def _dask_settings() -> Iterator[None]:
    """Every test starts from the plugin's default settings (``--set dask.…`` in a CLI test changes them)."""
    yield
    from loadstone_dask import config

    config.reset()


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


@pytest.fixture(scope="session")
def cluster_client() -> Iterator[Any]:
    """The session's cluster: 2 worker processes of 2 threads (not the default client)."""
    with start_cluster() as client:
        yield client


@pytest.fixture
def client(cluster_client: Any) -> Iterator[Any]:
    """The session's cluster as the current client for one test (``dask`` computes on it)."""
    with cluster_client.as_current():
        yield cluster_client


def worker_pids(client: Any) -> set[int]:
    """The process ids of the cluster's workers."""
    import os

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


@pytest.fixture(scope="session")
def dicomfile_series(tmp_path_factory: pytest.TempPathFactory) -> Series:
    """24 slices of 64x64 int16 in a folder (``dicomfile:<folder>``)."""
    folder = tmp_path_factory.mktemp("dask-ct")
    write_series(folder, ct_series(24, 64)[2])
    series_id = f"dicomfile:{folder}"
    return Series(series_id, loadstone.series_image_ids(series_id))


@pytest.fixture(scope="session")
def multiframe_file(tmp_path_factory: pytest.TempPathFactory) -> Series:
    """One 12-frame 64x64 instance (``dicomfile:<file>`` expands to its frames)."""
    folder = tmp_path_factory.mktemp("dask-multiframe")
    path = write_series(folder, ct_series(1, 64, frames=12)[2])[0]
    series_id = f"dicomfile:{path}"
    return Series(series_id, loadstone.series_image_ids(series_id))


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


@pytest.fixture(scope="session")
def wadors_series(orthanc_server: OrthancServer) -> Series:  # noqa: F811 - the imported fixture
    """24 slices of 64x64 in Orthanc, as a ``wadors:`` series id."""
    study, series, _ = upload_series(orthanc_server, 24)
    series_id = orthanc_server.wadors_series(study, series)
    return Series(series_id, loadstone.series_image_ids(series_id))
