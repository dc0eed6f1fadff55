"""Faults on a real cluster: retries, permanent errors, a killed worker, cancellation, a missing plugin."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from dask_helpers import (
    CLUSTER_TIMEOUT,
    FakeServer,
    Reply,
    Series,
    local_stack,
    pixel_mean,
    start_cluster,
    worker_pids,
)

import loadstone
import loadstone_dask
from loadstone import http
from loadstone_dask import WorkerPluginMissingError

pytestmark = pytest.mark.integration  # real clusters (and servers) on 127.0.0.1

PNG = loadstone.Image.from_array("png", (np.arange(48 * 64) % 251).astype(np.uint8).reshape(48, 64)).to_png()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``condition`` until true (bounded); returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
def web(fake_server: FakeServer) -> FakeServer:
    """A loopback server: ``/ok/…`` PNGs, ``/garbage/…`` not an image, anything else 404."""
    fake_server.route("/ok/", Reply(200, {"Content-Type": "image/png"}, PNG))
    fake_server.route("/garbage/", Reply(200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n broken"))
    return fake_server


def test_a_permanent_error_fails_once_typed_and_named(client: Any, web: FakeServer) -> None:
    ok = [f"{web.url}/ok/{n}.png" for n in range(3)]
    missing, garbage = f"{web.url}/missing.png", f"{web.url}/garbage/1.png"
    x = loadstone_dask.from_image_ids([ok[0], missing, ok[1]], images_per_chunk=1)
    with pytest.raises(loadstone.TransportError) as not_found:
        x.compute(retries=3)
    assert (not_found.value.status, not_found.value.image_id) == (404, missing)
    with pytest.raises(loadstone.InvalidImageError) as invalid:
        loadstone_dask.map_images(pixel_mean, [ok[2], garbage], images_per_task=1)  # submitted with retries=3
    assert invalid.value.image_id == garbage
    # Each bad image was fetched once although the graphs allowed 3 retries.
    assert len(web.paths("/missing.png")) == 1 and len(web.paths("/garbage/")) == 1


def test_a_transient_error_is_retried_by_dask(client: Any, web: FakeServer) -> None:
    calls: dict[str, int] = {}

    def flaky(path: str, _headers: dict[str, str]) -> Reply:
        calls[path] = calls.get(path, 0) + 1
        if calls[path] == 1:
            return Reply(503, {"Content-Type": "text/plain"}, b"busy")
        return Reply(200, {"Content-Type": "image/png"}, PNG)

    web.route("/flaky/", flaky)
    ok, first, second = f"{web.url}/ok/0.png", f"{web.url}/flaky/1.png", f"{web.url}/flaky/2.png"
    # retries=0 turns loadstone.http's own retries off, so what retries here is dask.
    x = loadstone_dask.from_image_ids([ok, first], images_per_chunk=1, retries=0)
    np.testing.assert_array_equal(x.compute(retries=2), local_stack([ok, ok]))
    assert calls["/flaky/1.png"] == 2
    with pytest.raises(loadstone.TransportError) as busy:  # no retries asked: the 503 is the answer
        loadstone_dask.from_image_ids([ok, second], images_per_chunk=1, retries=0).compute()
    assert (busy.value.status, busy.value.image_id) == (503, second)
    # map_images submits itself: task_retries is dask's, retries stays loadstone.http's load option.
    third, fourth = f"{web.url}/flaky/3.png", f"{web.url}/flaky/4.png"
    assert loadstone_dask.map_images(pixel_mean, [third], retries=0, task_retries=1) == [pixel_mean(
        loadstone.load_image(ok).result(30))]
    with pytest.raises(loadstone.TransportError, match="503"):
        loadstone_dask.map_images(pixel_mean, [fourth], retries=0, task_retries=0)
    assert (calls["/flaky/3.png"], calls["/flaky/4.png"]) == (2, 1)


def test_a_worker_killed_mid_computation_leaves_the_result_exact(wadors_series: Series) -> None:
    ids = wadors_series.image_ids
    expected = local_stack(ids)

    async def slow(request: http.HttpRequest) -> None:  # keeps the computation going for a few seconds
        await asyncio.sleep(0.2)

    with start_cluster(threads_per_worker=1) as client:
        pids = worker_pids(client)
        x = loadstone_dask.from_image_ids(ids, images_per_chunk=1, before_send=slow, client=client)
        future = client.compute(x)
        wait_until(lambda: _chunks_in_memory(client, x.name) >= 4, 30, "the first chunks")
        victim = sorted(pids)[0]
        assert not future.done()
        os.kill(victim, signal.SIGKILL)
        np.testing.assert_array_equal(future.result(timeout=CLUSTER_TIMEOUT), expected)
        assert victim not in worker_pids(client)  # it really died (its nanny started a new one)


def _chunks_in_memory(client: Any, name: str) -> int:
    """How many chunks of the array ``name`` the scheduler knows are computed."""

    def count(dask_scheduler: Any) -> int:
        return sum(isinstance(key, tuple) and key[0] == name and ts.state == "memory"
                   for key, ts in dask_scheduler.tasks.items())

    result: int = client.run_on_scheduler(count)
    return result


@pytest.fixture
def stalled(fake_server: FakeServer) -> Iterator[FakeServer]:
    """``/ok/…`` PNGs and ``/stall/…``: headers and 8 bytes, then nothing until the client leaves."""
    fake_server.route("/ok/", Reply(200, {"Content-Type": "image/png"}, PNG))
    fake_server.route("/stall/", Reply(200, {"Content-Type": "image/png"}, PNG, stall_after=8))
    yield fake_server


def _assert_workers_stop(client: Any, server: FakeServer) -> None:
    """Every worker's loads end within 2 s, no task thread still runs, and no request follows."""

    def idle() -> bool:
        states = client.run(loadstone_dask.worker_state).values()
        executing = client.run(lambda dask_worker: len(dask_worker.state.executing)).values()
        return all(s["loads_running"] == 0 and s["loads_queued"] == 0 and not s["running_tasks"]
                   for s in states) and not any(executing)

    assert wait_until(idle, 2.0, "every worker's loads ended") < 2.0
    requests = len(server.paths("/stall/"))
    time.sleep(0.5)
    assert len(server.paths("/stall/")) == requests, "a worker kept fetching after the cancel"


def test_cancel_stops_the_loads_on_every_worker(client: Any, stalled: FakeServer) -> None:
    ids = [f"{stalled.url}/ok/0.png"] + [f"{stalled.url}/stall/{n}.png" for n in range(10)]
    future = client.compute(loadstone_dask.from_image_ids(ids, images_per_chunk=1))
    # 2 workers x 2 threads: four stalled loads running, the other chunks queued.
    wait_until(lambda: len(stalled.paths("/stall/")) >= 4, 30, "four stalled loads")
    states = client.run(loadstone_dask.worker_state)
    assert all(state["loads_running"] >= 1 for state in states.values()), states
    client.cancel(future)
    _assert_workers_stop(client, stalled)


def test_keyboard_interrupt_in_compute_stops_the_loads(client: Any, stalled: FakeServer) -> None:
    ids = [f"{stalled.url}/ok/0.png"] + [f"{stalled.url}/stall/{n}.png" for n in range(10)]
    x = loadstone_dask.from_image_ids(ids, images_per_chunk=1)

    def interrupt() -> None:
        if wait_until(lambda: len(stalled.paths("/stall/")) >= 4, 30, "four stalled loads") is not None:
            os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Thread(target=interrupt, name="interrupter")
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            x.compute()
    finally:
        timer.join(35)
    _assert_workers_stop(client, stalled)


def test_a_worker_without_the_wado_plugin_gives_one_clear_error(dicomfile_series: Series) -> None:
    from distributed import Client, Nanny, Scheduler, SpecCluster

    def nanny(env: dict[str, str]) -> dict[str, Any]:
        return {"cls": Nanny, "options": {"nthreads": 1, "host": "127.0.0.1", "memory_limit": "1GiB",
                                          "env": env, "silence_logs": 40}}

    workers = {"with-wado": nanny({}), "without-wado": nanny({"LOADSTONE_DISABLE_PLUGINS": "wado"})}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": ":0"}}
    with SpecCluster(workers=workers, scheduler=scheduler, silence_logs=40) as cluster, \
            Client(cluster, set_as_default=False, timeout=CLUSTER_TIMEOUT) as client:
        client.wait_for_workers(2, timeout=CLUSTER_TIMEOUT)
        names = {info["name"]: address for address, info in client.scheduler_info()["workers"].items()}
        calls: list[Callable[[], Any]] = [
            lambda: loadstone_dask.from_image_ids(dicomfile_series.image_ids, client=client),
            lambda: loadstone_dask.from_series(dicomfile_series.series_id, client=client),
            lambda: loadstone_dask.map_images(pixel_mean, dicomfile_series.image_ids, client=client),
        ]
        for call in calls:
            with pytest.raises(WorkerPluginMissingError) as caught:
                call()
            error = caught.value
            assert (error.worker, error.scheme, error.distribution) == (
                names["without-wado"], "dicomfile", "loadstone-wado")
            assert names["without-wado"] in str(error) and "install loadstone-wado" in str(error)
            assert "disabled" in str(error)  # why, as the worker's loadstone says it
        # One round trip per check, and no task ever reached a worker.
        assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.task_prefixes)) == 0
        # The example scheme is served everywhere: that graph runs.
        example = loadstone_dask.from_image_ids(["example://ct/0"], client=client)
        assert example.compute(scheduler=client).shape == (1, 128, 128)
