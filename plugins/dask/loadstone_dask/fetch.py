"""``loadstone fetch --scheduler ADDRESS`` / ``--workers N``: the fetch, run by dask workers.

Each task loads a few images on a worker and writes their files there
(:func:`loadstone.fetching.write_image`, the same files and manifest entries
as a local fetch), so pixels never travel; only the records come back, and
the command's progress bar and summary follow them as tasks finish.  The
output folder must be one the workers can write (a shared file system on a
real cluster).  A task that fails transiently is retried by dask
(``config.retries``); one that still fails reports its images as failed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from loadstone.cli import positive_int
from loadstone.errors import LoadstoneError
from loadstone.fetching import FetchRecord, FetchSpec

from .blocks import fetch_block
from .graph import prepare
from .layout import split

__all__ = ["add_options", "distributed_fetch", "cluster_client"]


def add_options(parser: argparse.ArgumentParser) -> None:
    """``--scheduler ADDRESS`` and ``--workers N`` (one or the other)."""
    group = parser.add_argument_group("dask (loadstone-dask)")
    exclusive = group.add_mutually_exclusive_group()
    exclusive.add_argument("--scheduler", metavar="ADDRESS",
                           help="run the fetch on this dask.distributed scheduler's workers "
                                "(e.g. tcp://10.0.0.5:8786); they write into DIR, which they must reach")
    exclusive.add_argument("--workers", type=positive_int, metavar="N",
                           help="run the fetch on a local dask cluster of N worker processes")


@contextlib.contextmanager
def cluster_client(address: str | None, workers: int | None) -> Iterator[Any]:
    """A client of the scheduler at ``address``, or of a local cluster of ``workers`` processes."""
    from distributed import Client, LocalCluster

    if address:
        with Client(address) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client


def _failed(chunk: Sequence[tuple[int, str]], error: BaseException) -> list[FetchRecord]:
    message = " ".join(str(error).split())
    return [FetchRecord(index, image_id, None, type(error).__name__, message) for index, image_id in chunk]


def distributed_fetch(image_ids: Sequence[str], spec: FetchSpec, args: argparse.Namespace,
                      report: Callable[[FetchRecord], None]) -> bool | None:
    """The ``loadstone_fetch`` hook's work: None unless ``--scheduler`` or ``--workers`` was given."""
    address, workers = getattr(args, "scheduler", None), getattr(args, "workers", None)
    if not address and not workers:
        return None
    from distributed import as_completed

    with cluster_client(address, workers) as client:
        block_spec, _ = prepare(list(image_ids), client, dict(spec.load_options))
        settings = block_spec.settings
        fetch = dataclasses.replace(spec, load_options={})  # the options travel, checked, in block_spec
        chunks = split(list(enumerate(image_ids)), settings.fetch_images_per_task)
        futures = client.map(fetch_block, chunks, fetch=fetch, spec=block_spec, retries=settings.retries,
                             pure=False)
        chunk_of = {future.key: chunk for future, chunk in zip(futures, chunks, strict=True)}
        try:
            for future in as_completed(futures):
                try:
                    records = future.result()
                except LoadstoneError as exc:  # transient, and still failing after the retries
                    records = _failed(chunk_of[future.key], exc)
                for record in records:
                    report(record)
        except BaseException:
            client.cancel(futures)  # ^C or a write error: the workers stop their loads
            raise
    return True
