"""Fetching many images to files: what ``loadstone fetch`` does, as a library that runs anywhere.

The command line uses it on one machine; a scale-out plugin (loadstone-dask)
runs :func:`fetch_one` on its workers, each writing its images into the
output folder, and hands the :class:`FetchRecord` of each back, so pixels
never travel.  The files and the ``manifest.json`` are the same either way:
one ``.npy`` (stored values) and/or ``.png`` (rendered) per image, and a
manifest entry with shape, dtype, rescale, window and the geometry
(position, orientation, spacing) needed to restack the slices.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import enum
import json
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import _api, _state
from ._image import Image
from ._load_object import ImageLoadObject
from .errors import LoadstoneError

__all__ = [
    "FetchSpec",
    "FetchRecord",
    "fetch_one",
    "fetch_local",
    "write_image",
    "write_manifest",
    "file_stem",
    "jsonable",
    "write_atomic",
    "MANIFEST_FORMAT",
]

MANIFEST_FORMAT = "loadstone-fetch/1"
_PLANE_KEYS = ("image_position_patient", "image_orientation_patient", "pixel_spacing", "slice_thickness",
               "spacing_between_slices", "frame_of_reference_uid")


@dataclass(frozen=True)
class FetchSpec:
    """Where and what to write for each image, and how to load it."""

    output: Path
    npy: bool = True
    png: bool = False
    #: Seconds one load may take (None: no limit).
    timeout: float | None = None
    #: Options for every load (``headers``, ``before_send``…).
    load_options: Mapping[str, Any] = field(default_factory=dict)
    #: How many images the ids are numbered against (file names are zero-padded to it).
    total: int = 0


@dataclass(frozen=True)
class FetchRecord:
    """The outcome of one image: its manifest entry, or its error."""

    index: int
    image_id: str
    entry: dict[str, Any] | None = None
    error_type: str | None = None
    message: str | None = None
    nbytes: int = 0

    @property
    def ok(self) -> bool:
        """True when the image was written."""
        return self.entry is not None


def file_stem(index: int, image_id: str, total: int) -> str:
    """``0007_<id tail>``: unique, sortable, file-name-safe."""
    width = max(len(str(max(total - 1, 0))), 4)
    text = re.sub(r"[^A-Za-z0-9._-]+", "_", image_id).strip("._-")
    return f"{index:0{width}d}_{text[-60:].lstrip('._-') or 'image'}"


def jsonable(value: Any) -> Any:
    """Plain JSON data from metadata answers (numpy, tuples, dataclasses, bytes, NaN → null)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars
        return jsonable(value.tolist())
    if hasattr(value, "isoformat") and callable(value.isoformat):  # date, time, datetime
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset, deque)):
        return [jsonable(item) for item in value]
    return str(value)


def write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write through a temporary file and rename, so an interrupted run leaves no half file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _geometry(image_id: str) -> dict[str, Any]:
    plane = _state.metadata.get("imagePlaneModule", image_id)
    if not isinstance(plane, Mapping):
        return {}
    return {key: jsonable(plane.get(key)) for key in _PLANE_KEYS if plane.get(key) is not None}


def write_image(image: Image, spec: FetchSpec, stem: str) -> dict[str, Any]:
    """Write one image's files into ``spec.output``; returns its manifest entry."""
    folder = Path(spec.output)
    entry: dict[str, Any] = {}
    if spec.npy:
        name = f"{stem}.npy"
        write_atomic(folder / name, lambda handle: np.save(handle, image.pixel_data, allow_pickle=False))
        entry["file"] = name
    if spec.png:
        name = f"{stem}.png"
        png = image.to_png()
        write_atomic(folder / name, lambda handle: handle.write(png))
        entry["png"] = name
    entry.update({
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
    })
    entry.update(_geometry(image.image_id))
    return entry


def _failure(index: int, image_id: str, exc: LoadstoneError) -> FetchRecord:
    message = exc.message if exc.message and exc.image_id in (None, image_id) else str(exc)
    return FetchRecord(index, image_id, None, type(exc).__name__, " ".join(str(message).split()))


def _record(index: int, image_id: str, load: ImageLoadObject, spec: FetchSpec, cached: bool) -> FetchRecord:
    try:
        image = load.result(0)
    except LoadstoneError as exc:
        return _failure(index, image_id, exc)
    entry = write_image(image, spec, file_stem(index, image_id, spec.total))
    if not cached:  # a fetch has no use for a warm cache
        _state.cache.remove_image_load_object(image_id)
    return FetchRecord(index, image_id, entry, nbytes=int(image.pixel_data.nbytes))


def fetch_one(index: int, image_id: str, spec: FetchSpec) -> FetchRecord:
    """Load one image and write its files (what a worker of a distributed fetch runs)."""
    options = dict(spec.load_options)
    if spec.timeout is not None:
        options["timeout"] = spec.timeout
    try:
        load = _api.load_image(image_id, **options)
    except LoadstoneError as exc:
        return _failure(index, image_id, exc)
    try:
        # The load enforces its own timeout; the grace only guards a loader that ignores it.
        load.result(None if spec.timeout is None else spec.timeout + 5.0)
    except LoadstoneError:
        pass
    except BaseException:
        load.cancel()
        raise
    return _record(index, image_id, load, spec, cached=True)


def fetch_local(image_ids: Sequence[str], spec: FetchSpec, window: int) -> Generator[FetchRecord, None, None]:
    """Load through ``load_images`` in a sliding window and write each image; records as they finish.

    Why a window: a load's ``timeout`` counts from when it is queued, so
    queueing a whole large series at once would time out its tail; it also
    keeps at most ``window`` images in flight.  Closing the iterator early
    cancels what is still running.
    """
    options = dict(spec.load_options)
    if spec.timeout is not None:
        options["timeout"] = spec.timeout
    pending = deque(enumerate(image_ids))
    running: dict[concurrent.futures.Future[Any], tuple[int, str, ImageLoadObject, bool]] = {}
    try:
        while pending or running:
            if pending and len(running) < window:
                batch = [pending.popleft() for _ in range(min(window - len(running), len(pending)))]
                warm = {image_id for _, image_id in batch if image_id in _state.cache}
                loads = _api.load_images([image_id for _, image_id in batch], **options)
                for (index, image_id), load in zip(batch, loads, strict=True):
                    running[load.promise] = (index, image_id, load, image_id in warm)
            done, _ = concurrent.futures.wait(list(running), return_when=concurrent.futures.FIRST_COMPLETED)
            for promise in done:
                index, image_id, load, cached = running.pop(promise)
                yield _record(index, image_id, load, spec, cached)
    finally:
        for _, _, load, _ in running.values():  # interrupted or abandoned: stop what is left
            load.cancel()


def write_manifest(spec: FetchSpec, image_ids: Sequence[str], records: Sequence[FetchRecord],
                   series: Sequence[str] = ()) -> Path:
    """Write ``manifest.json`` (images in id order, failures by id); returns its path."""
    by_index = {record.index: record for record in records}
    manifest = {
        "format": MANIFEST_FORMAT,
        "series": list(series),
        "images": {image_ids[i]: by_index[i].entry for i in sorted(by_index) if by_index[i].ok},
        "failed": {image_ids[i]: {"error": by_index[i].error_type, "message": by_index[i].message}
                   for i in sorted(by_index) if not by_index[i].ok},
    }
    path = Path(spec.output) / "manifest.json"
    data = json.dumps(manifest, indent=2, allow_nan=False).encode("utf-8")
    write_atomic(path, lambda handle: handle.write(data))
    return path


def elapsed_since(started: float) -> float:
    """Seconds since a :func:`time.perf_counter` reading (for summaries)."""
    return time.perf_counter() - started
