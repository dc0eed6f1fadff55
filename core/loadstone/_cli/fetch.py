"""``loadstone fetch``: many images into .npy/PNG files and a manifest, with progress."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import loadstone
from loadstone._completion import progress_bar
from loadstone.errors import LoadstoneError
from loadstone.fetching import FetchRecord, FetchSpec, fetch_local, write_manifest

from .common import (
    EXIT_ERROR,
    EXIT_OK,
    UsageError,
    error,
    load_options_of,
    make_dir,
    timeout_of,
    unique,
)

__all__ = ["cmd_fetch", "fetch_summary"]

#: How many failed ids the one-line fetch error names before "and N more".
FAILURES_SHOWN = 3


def _fetch_ids(args: argparse.Namespace) -> list[str]:
    ids = list(args.image_ids)
    for series_id in args.series:
        expanded = loadstone.series_image_ids(series_id, **load_options_of(args))
        if not expanded:
            raise LoadstoneError(f"series {series_id!r} has no images", image_id=series_id)
        ids.extend(expanded)
    if not ids:
        raise UsageError("give at least one IMAGE_ID or --series SERIES_ID (see 'loadstone fetch --help')")
    return unique(ids)


def _number(value: float) -> str:
    """1 decimal for ordinary numbers, 2 significant digits below 1 (tiny test images)."""
    if value == 0 or abs(value) >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


def fetch_summary(count: int, nbytes: int, seconds: float) -> str:
    """``N images, X MB in T s (Y images/s, Z MB/s)`` (MB = 10**6 bytes)."""
    seconds = max(seconds, 1e-9)
    megabytes = nbytes / 1e6
    return (f"{count} images, {_number(megabytes)} MB in {_number(seconds)} s "
            f"({_number(count / seconds)} images/s, {_number(megabytes / seconds)} MB/s)")


def _failure_message(failed: dict[str, tuple[str, str]], total: int, manifest: Path) -> str:
    first = list(failed.items())[:FAILURES_SHOWN]
    shown = "; ".join(f"{image_id!r}: {message}" for image_id, (_, message) in first)
    more = len(failed) - FAILURES_SHOWN
    tail = f"; and {more} more (see {manifest})" if more > 0 else ""
    return f"{len(failed)} of {total} images failed: {shown}{tail}"


def cmd_fetch(args: argparse.Namespace) -> int:
    """Why: bulk export for numpy/ML pipelines, and a quick throughput measurement of a source."""
    if not args.npy and not args.png:
        raise UsageError("--no-npy without --png writes nothing (see 'loadstone fetch --help')")
    ids = _fetch_ids(args)
    folder = make_dir(args.output)
    spec = FetchSpec(folder, npy=args.npy, png=args.png, timeout=timeout_of(args),
                     load_options=load_options_of(args), total=len(ids))
    records: list[FetchRecord] = []
    nbytes = 0
    failures = 0
    bar = progress_bar(len(ids), not args.quiet, "fetch")
    started = time.perf_counter()

    def report(record: FetchRecord) -> None:
        nonlocal nbytes, failures
        records.append(record)
        nbytes += record.nbytes
        failures += not record.ok
        if bar is not None:
            bar.update(1)
            if failures:
                bar.set_postfix_str(f"{failures} failed", refresh=False)

    try:
        # A plugin may run the fetch elsewhere (loadstone-dask: --scheduler / --workers).
        if not loadstone.plugin_hooks().loadstone_fetch(image_ids=ids, spec=spec, args=args, report=report):
            _fetch_here(ids, spec, args, report)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - started
    manifest_path = write_manifest(spec, ids, records, args.series)
    written = sum(record.ok for record in records)
    print(fetch_summary(written, nbytes, elapsed))
    failed = {record.image_id: (record.error_type or "", record.message or "")
              for record in sorted(records, key=lambda r: r.index) if not record.ok}
    if failed:
        error(_failure_message(failed, len(ids), manifest_path))
        return EXIT_ERROR
    return EXIT_OK


def _fetch_here(ids: list[str], spec: FetchSpec, args: argparse.Namespace,
                report: Callable[[FetchRecord], None]) -> None:
    """The fetch on this machine, through the request pool."""
    pool = loadstone.pool
    previous = (pool.get_max_concurrent("prefetch"), pool.get_max_concurrent(None))
    if args.concurrency is not None:
        pool.set_max_concurrent("prefetch", args.concurrency)
        if args.concurrency > previous[1]:
            pool.set_max_concurrent(None, args.concurrency)
    records = fetch_local(ids, spec, max(2 * pool.get_max_concurrent("prefetch"), 4))
    try:
        for record in records:
            report(record)
    finally:
        records.close()  # cancels what is still running if a write failed or ^C
        if args.concurrency is not None:
            pool.set_max_concurrent("prefetch", previous[0])
            pool.set_max_concurrent(None, previous[1])
