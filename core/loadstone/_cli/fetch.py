"""``loadstone fetch``: many images into .npy/PNG files and a manifest, with progress."""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import re
import sys
import time
from collections import deque
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import loadstone
from loadstone.errors import LoadstoneError

from .common import (
    EXIT_ERROR,
    EXIT_OK,
    UsageError,
    error,
    jsonable,
    make_dir,
    one_line,
    timeout_of,
    unique,
    write_atomic,
    write_bytes,
)

if TYPE_CHECKING:
    from loadstone._image import Image
    from loadstone._load_object import ImageLoadObject

__all__ = ["cmd_fetch", "Progress", "iter_loads", "fetch_summary"]

#: How many failed ids the one-line fetch error names before "and N more".
FAILURES_SHOWN = 3


class Progress:
    """Progress on stderr: an in-place bar on a terminal, else a line every ~10 %.

    Why no tqdm: the core stays dependency-free; this is all fetch needs.
    """

    def __init__(self, total: int, stream: IO[str] | None = None, enabled: bool = True,
                 label: str = "fetch") -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and total > 0
        self.label = label
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self.started = time.perf_counter()
        self._last_draw = 0.0
        self._drawn = False
        self._next_step = 1
        self._step = max(1, math.ceil(total / 10))

    def update(self, done: int, failed: int = 0) -> None:
        """Report that ``done`` of ``total`` images have finished (``failed`` of them failed)."""
        if not self.enabled:
            return
        if self.tty:
            now = time.perf_counter()
            if done < self.total and now - self._last_draw < 0.1:
                return
            self._last_draw = now
            self._draw(done, failed, now)
        elif done >= self._next_step * self._step or done == self.total:
            self._next_step = done // self._step + 1
            percent = 100.0 * done / self.total
            extra = f", {failed} failed" if failed else ""
            print(f"{self.label}: {done}/{self.total} images ({percent:.0f}%{extra})",
                  file=self.stream, flush=True)

    def _draw(self, done: int, failed: int, now: float) -> None:
        import shutil

        elapsed = max(now - self.started, 1e-9)
        rate = done / elapsed
        columns = shutil.get_terminal_size((80, 24)).columns
        tail = f" {done}/{self.total} {100.0 * done / self.total:3.0f}% {rate:.1f} img/s"
        if failed:
            tail += f" {failed} failed"
        if done < self.total and rate > 0:
            tail += f" ETA {(self.total - done) / rate:.0f}s"
        head = f"{self.label} "
        width = max(10, min(40, columns - len(head) - len(tail) - 3))
        filled = int(width * done / self.total)
        line = f"{head}[{'#' * filled}{'.' * (width - filled)}]{tail}"
        self.stream.write("\r" + line[: max(columns - 1, 1)].ljust(max(columns - 1, 1)))
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the bar's line so later output starts on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _slug(image_id: str, limit: int = 60) -> str:
    """A file-name-safe tail of an image id (the index prefix keeps names unique)."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", image_id).strip("._-")
    return text[-limit:].lstrip("._-") or "image"


def _fetch_ids(args: argparse.Namespace) -> list[str]:
    ids = list(args.image_ids)
    for series_id in args.series:
        expanded = loadstone.series_image_ids(series_id)
        if not expanded:
            raise LoadstoneError(f"series {series_id!r} has no images", image_id=series_id)
        ids.extend(expanded)
    if not ids:
        raise UsageError("give at least one IMAGE_ID or --series SERIES_ID (see 'loadstone fetch --help')")
    return unique(ids)


def iter_loads(image_ids: Sequence[str], window: int, **options: Any
               ) -> Generator[tuple[int, str, Image | None, LoadstoneError | None], None, None]:
    """Load through ``loadstone.load_images`` in a sliding window; yield in completion order.

    Why a window: a load's ``timeout`` counts from when it is queued, so
    queueing a whole large series at once would time out its tail; it also
    keeps at most ``window`` images in flight.  Yields ``(index, id, image, error)``.
    """
    pending = deque(enumerate(image_ids))
    running: dict[concurrent.futures.Future[Any], tuple[int, str, ImageLoadObject]] = {}
    try:
        while pending or running:
            if pending and len(running) < window:
                batch = [pending.popleft() for _ in range(min(window - len(running), len(pending)))]
                loads = loadstone.load_images([image_id for _, image_id in batch], **options)
                for (index, image_id), load in zip(batch, loads, strict=True):
                    running[load.promise] = (index, image_id, load)
            done, _ = concurrent.futures.wait(list(running), return_when=concurrent.futures.FIRST_COMPLETED)
            for promise in done:
                index, image_id, load = running.pop(promise)
                try:
                    image = load.result(0)
                except LoadstoneError as exc:
                    yield index, image_id, None, exc
                else:
                    yield index, image_id, image, None
    finally:
        for _, _, load in running.values():  # interrupted or abandoned: stop what is left
            load.cancel()


def _image_entry(image: Image) -> dict[str, Any]:
    return {
        "shape": list(image.pixel_data.shape),
        "dtype": str(image.pixel_data.dtype),
        "slope": jsonable(image.slope),
        "intercept": jsonable(image.intercept),
        "window_center": jsonable(image.window_center),
        "window_width": jsonable(image.window_width),
        "row_pixel_spacing": jsonable(image.row_pixel_spacing),
        "column_pixel_spacing": jsonable(image.column_pixel_spacing),
        "photometric_interpretation": image.photometric_interpretation,
        "invert": bool(image.invert),
    }


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


def _describe(exc: LoadstoneError, image_id: str) -> tuple[str, str]:
    """(error type, one-line message), without the id that the listing already names."""
    message = exc.message if exc.message and exc.image_id in (None, image_id) else str(exc)
    return type(exc).__name__, one_line(message)


def _failure_message(failed: dict[str, tuple[str, str]], total: int, manifest: Path) -> str:
    first = list(failed.items())[:FAILURES_SHOWN]
    shown = "; ".join(f"{image_id!r}: {message}" for image_id, (_, message) in first)
    more = len(failed) - FAILURES_SHOWN
    tail = f"; and {more} more (see {manifest})" if more > 0 else ""
    return f"{len(failed)} of {total} images failed: {shown}{tail}"


def cmd_fetch(args: argparse.Namespace) -> int:
    """Why: bulk export for numpy/ML pipelines, and a quick throughput measurement of a source."""
    import numpy as np

    if not args.npy and not args.png:
        raise UsageError("--no-npy without --png writes nothing (see 'loadstone fetch --help')")
    ids = _fetch_ids(args)
    folder = make_dir(args.output)
    manifest_path = folder / "manifest.json"
    pool = loadstone.pool
    previous = (pool.get_max_concurrent("prefetch"), pool.get_max_concurrent(None))
    if args.concurrency is not None:
        pool.set_max_concurrent("prefetch", args.concurrency)
        if args.concurrency > previous[1]:
            pool.set_max_concurrent(None, args.concurrency)
    concurrency = pool.get_max_concurrent("prefetch")
    timeout = timeout_of(args)
    options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    width = len(str(max(len(ids) - 1, 0)))
    was_cached = {image_id for image_id in ids if image_id in loadstone.cache}
    entries: dict[int, dict[str, Any]] = {}
    failed_at: dict[int, LoadstoneError] = {}
    nbytes = 0
    progress = Progress(len(ids), enabled=not args.quiet)
    started = time.perf_counter()
    loads = iter_loads(ids, max(2 * concurrency, 4), **options)
    try:
        for done, (index, image_id, image, failure) in enumerate(loads, 1):
            if failure is not None:
                failed_at[index] = failure
            elif image is not None:
                entries[index] = _write_image(folder, f"{index:0{max(width, 4)}d}_{_slug(image_id)}",
                                              image, args.npy, args.png, np)
                nbytes += int(image.pixel_data.nbytes)
                if image_id not in was_cached:  # the CLI has no use for a warm cache
                    loadstone.cache.remove_image_load_object(image_id)
            progress.update(done, len(failed_at))
    finally:
        loads.close()  # cancels what is still running if a write failed or ^C
        progress.close()
        if args.concurrency is not None:
            pool.set_max_concurrent("prefetch", previous[0])
            pool.set_max_concurrent(None, previous[1])
    elapsed = time.perf_counter() - started
    failed = {ids[index]: _describe(failed_at[index], ids[index]) for index in sorted(failed_at)}
    manifest = {
        "format": "loadstone-fetch/1",
        "series": list(args.series),
        "images": {ids[index]: entries[index] for index in sorted(entries)},
        "failed": {image_id: {"error": error_type, "message": message}
                   for image_id, (error_type, message) in failed.items()},
    }
    write_atomic(manifest_path, lambda handle: handle.write(
        json.dumps(manifest, indent=2, allow_nan=False).encode("utf-8")))
    print(fetch_summary(len(entries), nbytes, elapsed))
    if failed:
        error(_failure_message(failed, len(ids), manifest_path))
        return EXIT_ERROR
    return EXIT_OK


def _write_image(folder: Path, stem: str, image: Image, npy: bool, png: bool, np: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if npy:
        name = f"{stem}.npy"
        write_atomic(folder / name, lambda handle: np.save(handle, image.pixel_data, allow_pickle=False))
        entry["file"] = name
    if png:
        name = f"{stem}.png"
        write_bytes(folder / name, image.to_png())
        entry["png"] = name
    entry.update(_image_entry(image))
    return entry


