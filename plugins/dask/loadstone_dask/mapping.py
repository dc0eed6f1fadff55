"""``map_images``: a function of each image, run on the worker where the image loads.

Why: statistics, thumbnails and features need the pixels only where they
load; shipping 200 MB of slices to the client to reduce them to a few
numbers is the cost this avoids.  Results come back in the order of the ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import dask
import dask.bag as db

import loadstone

from .blocks import map_block
from .graph import prepare
from .layout import layout_from_metadata
from .options import check_shippable

__all__ = ["map_images", "default_images_per_task"]

#: Images per task when the metadata does not tell their size.
DEFAULT_IMAGES_PER_TASK = 16


def default_images_per_task(image_id: str, chunk_bytes: int) -> int:
    """As many images as fit in ``chunk_bytes`` by the first image's metadata (else 16)."""
    layout = layout_from_metadata(image_id)
    if layout is None:
        return DEFAULT_IMAGES_PER_TASK
    return max(1, chunk_bytes // max(1, layout.nbytes(False)))


def map_images(func: Callable[[loadstone.Image], Any], image_ids: Iterable[str], *, client: Any = None,
               compute: bool = True, images_per_task: int | None = None, task_retries: int | None = None,
               **load_options: Any) -> Any:
    """``[func(image) for each id]``, each call on the worker where its image loaded, in id order.

    ``func`` gets a :class:`loadstone.Image` and returns anything picklable;
    only its results travel to the client.  Runs on ``client`` (or the
    default ``distributed.Client``); dask retries a task that failed
    transiently ``task_retries`` times (default ``config.retries``; the load
    option ``retries`` is loadstone.http's own); with no client, on dask's
    local threads.  ``compute=False`` returns the lazy ``dask.bag.Bag``
    instead (``bag.compute()`` gives the same list; ``client.compute(bag)``
    a future of it).  A permanent failure raises its typed error, naming the
    image; ``func``'s own exceptions propagate as dask propagates them.
    ``load_options`` as for :func:`from_image_ids`.
    """
    if not callable(func):
        raise TypeError(f"map_images needs a function of a loadstone.Image, got {func!r}")
    if isinstance(image_ids, str):
        raise TypeError("map_images takes an iterable of image ids, not one str")
    ids = list(image_ids)
    check_shippable("func", func, what="map_images function")
    spec, client = prepare(ids, client, load_options)
    if not ids:
        return [] if compute else db.from_sequence([], npartitions=1)
    per_task = images_per_task or default_images_per_task(ids[0], spec.settings.chunk_bytes)
    bag = db.from_sequence(ids, partition_size=per_task).map_partitions(map_block, func, spec)
    if not compute:
        return bag
    if client is None:
        scheduler = None if dask.config.get("scheduler", None) else "threads"
        return bag.compute(scheduler=scheduler)
    retries = spec.settings.retries if task_retries is None else task_retries
    future = client.compute(bag, retries=retries)
    try:
        return future.result()
    except BaseException:
        future.cancel()  # an interrupt or a failure: the workers stop what is left
        raise
