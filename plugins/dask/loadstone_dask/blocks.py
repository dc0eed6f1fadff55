"""What a task runs on a worker: load a run of images through loadstone and turn them into a result.

One loop serves the three kinds of task: an array chunk (the pixels
stacked), a map (``func(image)`` per image) and a fetch (each image written
to files).  The images of a task load together through ``load_images`` (the
worker's request pool runs them concurrently), are consumed as they finish,
and leave the worker's cache as soon as the task has used them.  The first
failure stops the task and cancels its other loads; a cancelled task
(:mod:`.worker`) cancels them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import loadstone
from loadstone.errors import InvalidImageError, LoadstoneError
from loadstone.fetching import FetchRecord, FetchSpec, file_stem, write_image

from .config import Settings
from .faults import is_permanent, permanent_failures_stick
from .layout import ImageLayout, layout_of_image
from .options import ShippedOptions
from .worker import TaskScope, release, task_scope, warm_series

__all__ = ["BlockSpec", "load_block", "map_block", "fetch_block", "probe_layout"]


@dataclass(frozen=True)
class BlockSpec:
    """Everything a task needs besides its image ids (one per graph, shared by its tasks)."""

    options: ShippedOptions
    settings: Settings
    layout: ImageLayout | None = None
    rescale: bool = False
    #: A series whose metadata each worker should learn in one go first (``config.series_warmup_schemes``).
    series_id: str | None = None

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return (self.options.token, self.layout, self.rescale, self.series_id)


def _images(image_ids: Sequence[str], options: Mapping[str, Any], scope: TaskScope,
            failed: Callable[[int, LoadstoneError], None] | None = None
            ) -> Iterator[tuple[int, loadstone.Image]]:
    """``(index, image)`` as each load finishes; a failure raises (or goes to ``failed``)."""
    warm = {image_id for image_id in image_ids if image_id in loadstone.cache}
    scope.loading(image_ids)
    loads = loadstone.load_images(image_ids, **options)
    positions: dict[int, list[int]] = {}
    for index, load in enumerate(loads):
        positions.setdefault(id(load), []).append(index)
    try:
        for load in loadstone.as_completed(dict.fromkeys(loads)):
            try:
                image = load.result(0)
            except LoadstoneError as exc:
                if failed is None or not is_permanent(exc) or scope.cancelled.is_set():
                    raise
                for index in positions[id(load)]:
                    failed(index, exc)
                continue
            for index in positions[id(load)]:
                yield index, image
    finally:
        for load in loads:
            if not load.done():
                load.cancel()
        release(image_ids, keep=warm)


def _ids(block: Any) -> list[str]:
    """The ids of a block: a numpy object array (array chunks) or a list."""
    return [str(image_id) for image_id in np.asarray(block, dtype=object).ravel()]


def load_block(block: Any, spec: BlockSpec) -> np.ndarray:
    """One array chunk: ``(len(ids), *layout.shape)`` pixels, stored values or float32 modality values."""
    layout = spec.layout
    assert layout is not None
    image_ids = _ids(block)
    out = np.empty((len(image_ids), *layout.shape), dtype=layout.array_dtype(spec.rescale))
    with permanent_failures_stick(), task_scope(spec.settings) as scope:
        if spec.series_id is not None:
            warm_series(spec.series_id, spec.options.options)
        for index, image in _images(image_ids, spec.options.options, scope):
            pixels = image.pixel_data
            if pixels.shape != layout.shape or (not spec.rescale and pixels.dtype != layout.dtype):
                raise InvalidImageError(
                    f"image {image_ids[index]!r} has {layout_of_image(image).describe()} pixels where the "
                    f"array holds {layout.describe()}; every image of an array needs one size and type",
                    image_id=image_ids[index])
            out[index] = image.modality_pixel_data(np.float32) if spec.rescale else pixels
    return out


def map_block(block: Any, func: Callable[[loadstone.Image], Any], spec: BlockSpec) -> list[Any]:
    """``func(image)`` for each image of the block, in the block's order."""
    image_ids = _ids(block)
    results: list[Any] = [None] * len(image_ids)
    with permanent_failures_stick(), task_scope(spec.settings) as scope:
        for index, image in _images(image_ids, spec.options.options, scope):
            results[index] = func(image)
    return results


def fetch_block(indexed: Sequence[tuple[int, str]], fetch: FetchSpec, spec: BlockSpec) -> list[FetchRecord]:
    """Write each image's files (as ``loadstone fetch`` does); a record per image.

    A permanent failure is a record (the manifest lists it); a transient one
    fails the task, for dask to retry.
    """
    image_ids = [image_id for _, image_id in indexed]
    records: list[FetchRecord] = []
    options = dict(spec.options.options)
    if fetch.timeout is not None:
        options["timeout"] = fetch.timeout

    def failed(position: int, exc: LoadstoneError) -> None:
        index, image_id = indexed[position]
        records.append(FetchRecord(index, image_id, None, type(exc).__name__, " ".join(str(exc).split())))

    with task_scope(spec.settings) as scope:
        for position, image in _images(image_ids, options, scope, failed):
            index, image_id = indexed[position]
            entry = write_image(image, fetch, file_stem(index, image_id, fetch.total))
            records.append(FetchRecord(index, image_id, entry, nbytes=int(image.pixel_data.nbytes)))
    return records


def probe_layout(image_id: str, spec: BlockSpec) -> ImageLayout:
    """The layout of one image, loaded where the computation runs (metadata could not tell)."""
    with permanent_failures_stick(), task_scope(spec.settings) as scope:
        for _, image in _images([image_id], spec.options.options, scope):
            return layout_of_image(image)
    raise InvalidImageError(f"image {image_id!r} did not load", image_id=image_id)  # pragma: no cover
