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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "wado"))  # orthanc.py, synthetic.py

from orthanc import FakeServer, OrthancServer, Reply, basic_auth

import loadstone

__all__ = ["CLUSTER_TIMEOUT", "FakeServer", "OrthancServer", "Reply", "Series", "basic_auth",
           "colour_frames_file", "ct_files", "local_stack", "pixel_mean", "start_cluster", "upload_files",
           "worker_pids"]

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


def upload_files(server: OrthancServer, paths: list[Path]) -> tuple[str, str, list[str]]:
    """Store Part 10 files in Orthanc: ``(study, series, SOP instance UIDs)`` in the order of ``paths``."""
    import pydicom

    sops = []
    for path in paths:
        answer = server.upload(path.read_bytes())
        assert answer.get("Status") in ("Success", "AlreadyStored"), answer
        sops.append(str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID))
    first = pydicom.dcmread(paths[0], stop_before_pixels=True)
    return str(first.StudyInstanceUID), str(first.SeriesInstanceUID), sops


def ct_files(folder: Path, count: int, size: int = 64, shuffle: bool = True) -> list[Path]:
    """A synthetic CT series (the wado tests' ``synthetic``) written into ``folder``, in slice order."""
    import synthetic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return synthetic.write_series(folder, count, rows=size, columns=size, shuffle=shuffle)


def colour_frames_file(folder: Path, frames: int, size: int = 64) -> Path:
    """One multi-frame RGB instance (``synthetic.rgb_dataset``) written into ``folder``."""
    import synthetic

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "frames.dcm"
    synthetic.rgb_dataset(size, size, frames=frames).save_as(path, enforce_file_format=True)
    return path
