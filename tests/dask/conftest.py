"""Fixtures of the loadstone-dask tests: real ``distributed.LocalCluster``s on 127.0.0.1, and their data.

The shared cluster (2 worker processes, 2 threads each) lives for the
session: starting one costs seconds.  Tests that break a cluster (a killed
worker, a worker without a plugin) start their own with
``dask_helpers.start_cluster``, and every cluster is closed at teardown,
bounded in time.  Orthanc comes from the WADO tests' fixtures
(``tests/wado/orthanc.py``, imported by name, one server per session); the
series are the WADO tests' synthetic ones (``tests/wado/synthetic.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dask_helpers import OrthancServer, Series, colour_frames_file, ct_files, start_cluster, upload_files
from orthanc import fake_server, orthanc_auth_server, orthanc_server  # noqa: F401 - fixtures for this folder

import loadstone


@pytest.fixture(autouse=True)
def _dask_settings() -> Iterator[None]:
    """Every test starts from the plugin's default settings (``--set dask.…`` in a CLI test changes them)."""
    yield
    from loadstone_dask import config

    config.reset()


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


@pytest.fixture(scope="session")
def dicomfile_series(tmp_path_factory: pytest.TempPathFactory) -> Series:
    """24 slices of 64x64 int16 in a folder (``dicomfile:<folder>``; file names in no order)."""
    folder = tmp_path_factory.mktemp("dask-ct")
    ct_files(folder, 24)
    series_id = f"dicomfile:{folder}"
    return Series(series_id, loadstone.series_image_ids(series_id))


@pytest.fixture(scope="session")
def multiframe_file(tmp_path_factory: pytest.TempPathFactory) -> Series:
    """One 12-frame 64x64 RGB instance (``dicomfile:<file>`` expands to its frames)."""
    path = colour_frames_file(tmp_path_factory.mktemp("dask-multiframe"), 12)
    series_id = f"dicomfile:{path}"
    return Series(series_id, loadstone.series_image_ids(series_id))


@pytest.fixture(scope="session")
def wadors_series(orthanc_server: OrthancServer,  # noqa: F811 - the imported fixture
                  tmp_path_factory: pytest.TempPathFactory) -> Series:
    """24 slices of 64x64 in Orthanc, as a ``wadors:`` series id."""
    study, series, _ = upload_files(orthanc_server, ct_files(tmp_path_factory.mktemp("dask-upload"), 24))
    series_id = orthanc_server.wadors_series(study, series)
    return Series(series_id, loadstone.series_image_ids(series_id))
