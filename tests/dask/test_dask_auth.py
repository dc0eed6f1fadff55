"""Load options reach the workers: headers and an async before_send against an Orthanc that demands them."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dask_helpers import OrthancServer, basic_auth, ct_files, local_stack, upload_files, worker_pids

import loadstone
import loadstone_dask
from loadstone import http

pytestmark = pytest.mark.integration  # real clusters (and servers) on 127.0.0.1


@pytest.fixture(scope="module")
def protected(orthanc_auth_server: OrthancServer,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[OrthancServer, list[str], str]:
    """6 slices in the Orthanc with authentication: (server, frame ids, series id)."""
    study, series, sops = upload_files(orthanc_auth_server, ct_files(tmp_path_factory.mktemp("auth"), 6))
    ids = [orthanc_auth_server.wadors_id(study, series, sop) for sop in sops]
    return orthanc_auth_server, ids, orthanc_auth_server.wadors_series(study, series)


def test_headers_reach_orthanc_from_the_workers(client: Any, protected: Any) -> None:
    server, ids, _ = protected
    expected = local_stack(ids, headers=server.headers)
    x = loadstone_dask.from_image_ids(ids, headers=server.headers, images_per_chunk=2)
    np.testing.assert_array_equal(x.compute(), expected)
    with pytest.raises(loadstone.TransportError) as refused:  # no credentials on the workers: 401, typed
        loadstone_dask.from_image_ids(ids, images_per_chunk=2).compute(retries=2)
    assert refused.value.status == 401 and refused.value.image_id in ids


def test_async_before_send_reaches_orthanc_from_the_workers(client: Any, protected: Any,
                                                            tmp_path: Path) -> None:
    server, ids, _ = protected
    header = basic_auth()
    log = tmp_path / "hook.log"

    async def authenticate(request: http.HttpRequest) -> None:
        await asyncio.sleep(0)
        request.headers["Authorization"] = header
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")

    means = loadstone_dask.map_images(lambda image: float(image.pixel_data.mean()), ids,
                                      before_send=authenticate, images_per_task=2)
    assert means == pytest.approx([float(s.mean()) for s in local_stack(ids, headers=server.headers)])
    hook_pids = {int(line) for line in log.read_text().split()}
    assert hook_pids and hook_pids <= worker_pids(client) and os.getpid() not in hook_pids


def test_from_series_with_credentials_on_both_sides(client: Any, protected: Any) -> None:
    server, _, series_id = protected
    # The series is expanded on the client (its own HTTP client), the slices load on the workers.
    previous = http.set_default_client(http.HttpClient(headers=server.headers))
    try:
        volume = loadstone_dask.from_series(series_id, headers=server.headers)
        local = loadstone.load_volume(series_id, headers=server.headers)
    finally:
        http.set_default_client(previous)
    np.testing.assert_array_equal(volume.array.compute(), local.array)
    np.testing.assert_allclose(volume.affine, local.affine)


def test_an_option_that_cannot_be_pickled_fails_at_graph_build(client: Any, protected: Any) -> None:
    _, ids, _ = protected
    lock = threading.Lock()

    def hook(request: http.HttpRequest) -> None:
        with lock:
            request.headers["Authorization"] = basic_auth()

    before = client.run(loadstone_dask.worker_state)
    with pytest.raises(TypeError, match=r"load option before_send=.*cannot be sent to the dask workers"):
        loadstone_dask.from_image_ids(ids, before_send=hook)
    with pytest.raises(TypeError, match="http_client"):
        loadstone_dask.from_image_ids(ids, http_client=http.HttpClient())
    assert client.run(loadstone_dask.worker_state).keys() == before.keys()
