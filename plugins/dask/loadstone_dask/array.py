"""``from_image_ids``: image ids as one lazy ``dask.array.Array``, whole images per chunk."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize

from .blocks import BlockSpec, load_block
from .graph import layout_for, prepare

__all__ = ["from_image_ids", "images_array"]


def _id_list(image_ids: Iterable[str]) -> list[str]:
    if isinstance(image_ids, str):
        raise TypeError("from_image_ids takes an iterable of image ids, not one str "
                        "(a series id goes to from_series)")
    ids = list(image_ids)
    if not ids:
        raise ValueError("from_image_ids needs at least one image id")
    return ids


def images_array(image_ids: list[str], spec: BlockSpec, images_per_chunk: int | None) -> Any:
    """The lazy array of ``image_ids`` with ``spec.layout`` (one task per chunk)."""
    layout = spec.layout
    assert layout is not None
    per_chunk = images_per_chunk or max(1, spec.settings.chunk_bytes // max(1, layout.nbytes(spec.rescale)))
    if isinstance(per_chunk, bool) or not isinstance(per_chunk, int) or per_chunk < 1:
        raise ValueError(f"images_per_chunk must be a positive int, got {images_per_chunk!r}")
    token = tokenize(image_ids, spec, per_chunk)
    ids = da.from_array(np.array(image_ids, dtype=object), chunks=per_chunk, name=f"loadstone-ids-{token}")
    dtype = layout.array_dtype(spec.rescale)
    return da.map_blocks(
        load_block, ids, spec=spec,
        name=f"loadstone-images-{token}",
        new_axis=list(range(1, 1 + len(layout.shape))),
        chunks=(ids.chunks[0], *((n,) for n in layout.shape)),
        dtype=dtype, meta=np.empty((0,) * (1 + len(layout.shape)), dtype=dtype),
    )


def from_image_ids(image_ids: Iterable[str], *, images_per_chunk: int | None = None, rescale: bool = False,
                   client: Any = None, **load_options: Any) -> Any:
    """A lazy ``dask.array.Array`` of the images: ``(N, rows, columns)``, or ``(N, rows, columns, 3)``.

    Each chunk holds whole images (``images_per_chunk``; by default as many
    as fit in ``config.chunk_bytes``, 32 MiB) and loads through loadstone on
    whichever worker runs it.  Shape and dtype come from the first id's
    ``imagePixelModule`` metadata when the plugins answer it without loading
    pixels, else from loading the first image; an image whose size or dtype
    differs fails its chunk with ``InvalidImageError`` naming it.
    ``rescale=True`` gives float32 modality values (``stored * slope + intercept``,
    each image its own).  ``load_options`` (``headers``, ``timeout``,
    ``before_send``, …) go to every load on the workers; one that cannot be
    pickled raises ``TypeError`` here.  With a ``distributed`` client (given,
    or the default one) its workers are first checked for the plugins the
    ids need (:class:`WorkerPluginMissingError`).

    The array computes on the current scheduler like any dask array; pass
    ``retries=`` to ``compute``/``persist`` to retry transient failures.
    """
    ids = _id_list(image_ids)
    spec, client = prepare(ids, client, load_options)
    spec = dataclasses.replace(spec, layout=layout_for(ids[0], spec, client), rescale=bool(rescale))
    return images_array(ids, spec, images_per_chunk)
