"""The ``mpr`` image loader: parse the id, get the shared volume, reslice, return a full Image.

The loader is an ``async def`` wrapped by :func:`loadstone.image_loader`, so
a plane waiting for its volume holds no worker thread (the slices it waits
for need those).  The reslice itself runs on the plugin's own small thread
pool, never on loadstone's event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

import loadstone
from loadstone import (
    Image,
    ImageLoadError,
    ImageLoadObject,
    InvalidImageError,
    LoadCancelledError,
    LoadstoneError,
    UnsupportedError,
)

from ._config import config
from ._geometry import VolumeGeometry, plane_grid, stack_count
from ._grammar import MprSpec, Source, is_mpr_id, parse_mpr_id, with_index
from ._reslice import resample
from ._volume import (
    CACHE_PREFIX,
    Volume,
    acquire,
    cached_volume,
    count_waiting,
    describe,
    plane_error,
    source_info,
    source_volume,
    unbox,
    volume_result,
)

__all__ = ["load_mpr", "load_mpr_image", "make_plane_image", "geometry_for", "stack_image_ids"]

_ATTEMPTS = 3
_plane_pool: concurrent.futures.ThreadPoolExecutor | None = None
_plane_pool_lock = threading.Lock()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _plane_pool
    if _plane_pool is None:
        with _plane_pool_lock:
            if _plane_pool is None:
                _plane_pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=max(2, min(4, config.threads)), thread_name_prefix="loadstone-mpr-plane")
    return _plane_pool


def _request_type(options: Mapping[str, Any]) -> str:
    value = options.get("request_type") if options else None
    if value is None:
        return "interaction"
    return str(getattr(value, "value", value)).lower()


def make_plane_image(image_id: str, spec: MprSpec, volume: Volume) -> Image:
    """Reslice ``volume`` as ``spec`` asks and wrap the pixels as a full Image (synchronous)."""
    grid = plane_grid(spec, volume.geometry, image_id)
    started = time.perf_counter()
    pixels, inside = resample(volume.array, volume.geometry, grid, volume.min_value)
    if inside == 0:
        raise InvalidImageError(
            f"the {spec.plane} plane misses the volume of {describe(spec.source)}: none of its "
            f"{grid.rows}x{grid.columns} pixels lies inside", image_id=image_id)
    decode_ms = (time.perf_counter() - started) * 1000.0
    return Image(
        image_id=image_id,
        rows=grid.rows,
        columns=grid.columns,
        pixel_data=pixels,
        min_pixel_value=float(np.min(pixels)),
        max_pixel_value=float(np.max(pixels)),
        slope=volume.slope,
        intercept=volume.intercept,
        window_center=volume.window_center,
        window_width=volume.window_width,
        voi_lut_function=volume.voi_lut_function,
        invert=volume.photometric_interpretation == "MONOCHROME1",
        photometric_interpretation=volume.photometric_interpretation,
        row_pixel_spacing=grid.row_spacing,
        column_pixel_spacing=grid.column_spacing,
        decode_time_ms=decode_ms,
        extra={"image_plane_module": grid.image_plane_module(), "volume_id": volume.id},
    )


async def _volume_of(spec: MprSpec, image_id: str, request_type: str) -> Volume:
    """The plane's volume, waiting (without a thread) for a build in progress."""
    context = loadstone.current_load()
    last: LoadstoneError | None = None
    for _ in range(_ATTEMPTS):
        build = acquire(spec.source)
        if build.promise.done():
            try:
                volume = volume_result(build, 0)
            except LoadCancelledError as exc:  # a build whose waiters all left; start afresh
                last = exc
                continue
            except LoadstoneError as exc:
                raise plane_error(exc, image_id) from exc
            if volume is not None:
                return volume
            continue  # evicted a moment ago: build again
        token = build.join(context)
        count_waiting(request_type, 1)
        try:
            volume = unbox(await build.load_object)
            if volume is not None:
                return volume
            continue
        except LoadCancelledError as exc:
            if context is not None and context.cancelled:
                raise
            last = exc
        except LoadstoneError as exc:
            raise plane_error(exc, image_id) from exc
        finally:
            count_waiting(request_type, -1)
            build.leave(token)
    if last is None:
        last = LoadCancelledError(f"the volume of {describe(spec.source)} kept leaving the cache before "
                                  "it could be used; raise the cache's maximum size")
    raise plane_error(last, image_id) from last


async def load_mpr_image(image_id: str, options: Mapping[str, Any]) -> Image:
    """Load one ``mpr:`` image (the function behind :data:`load_mpr`)."""
    spec = parse_mpr_id(image_id)
    volume = await _volume_of(spec, image_id, _request_type(options))
    context = loadstone.current_load()
    if context is not None:
        context.check()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), make_plane_image, image_id, spec, volume)


_load_async = loadstone.image_loader(load_mpr_image)


def _ready_volume(spec: MprSpec) -> Volume | None:
    """The source's volume if it is built and cached (marking it recently used), else None."""
    load_object = loadstone.cache.get_image_load_object(CACHE_PREFIX + spec.source.key)
    if load_object is None or not load_object.done():
        return None
    try:
        return unbox(load_object.promise.result(0))
    except BaseException:
        return None


def _compute(promise: concurrent.futures.Future[Image], image_id: str, spec: MprSpec, volume: Volume,
             started: float) -> None:
    if not promise.set_running_or_notify_cancel():
        return  # cancelled while queued
    try:
        image = make_plane_image(image_id, spec, volume)
    except BaseException as exc:
        if not isinstance(exc, LoadstoneError):
            error = ImageLoadError(f"load failed: {type(exc).__name__}: {exc}", image_id=image_id)
            error.__cause__ = exc
            exc = error
        promise.set_exception(exc)
        return
    image.load_time_ms = (time.perf_counter() - started) * 1000.0
    promise.set_result(image)


def load_mpr(image_id: str, options: Mapping[str, Any]) -> ImageLoadObject:
    """The ImageLoader of the ``mpr`` scheme.

    When the volume is already built (the next plane of a series), the plane
    is computed straight on the plugin's thread pool; otherwise the load
    waits for the volume without holding a thread (see :func:`load_mpr_image`).
    """
    try:
        spec = parse_mpr_id(image_id)
    except InvalidImageError:
        return _load_async(image_id, options)  # it fails there, through the usual path
    volume = _ready_volume(spec)
    if volume is None:
        return _load_async(image_id, options)
    promise: concurrent.futures.Future[Image] = concurrent.futures.Future()
    _executor().submit(_compute, promise, image_id, spec, volume, time.perf_counter())
    return ImageLoadObject(promise, None, None, image_id)


def geometry_for(source: Source) -> VolumeGeometry | None:
    """The volume geometry without loading pixels: the built volume's, else the metadata's, else None."""
    volume = cached_volume(source)
    if volume is not None:
        return volume.geometry
    try:
        return source_info(source).geometry
    except LoadstoneError:
        return None


def stack_image_ids(series_id: str) -> list[str] | None:
    """Expand ``mpr:<axis plane>;…;series=…`` (no index or position) into the ids of all its planes.

    None for ids that are not ``mpr:``; an id that already names one plane is
    a stack of one.
    """
    if not is_mpr_id(series_id):
        return None
    spec = parse_mpr_id(series_id)
    if spec.index is not None or spec.position is not None:
        return [series_id]
    if not spec.is_axis_plane:
        raise UnsupportedError("only axial, sagittal and coronal mpr ids expand into stacks; "
                               "give an oblique plane as single ids with point=", image_id=series_id)
    geometry = geometry_for(spec.source)
    if geometry is None:  # the metadata knows no geometry until pixels load: build the volume
        geometry = source_volume(spec.source).geometry
    return [with_index(series_id, k) for k in range(stack_count(spec.plane, geometry))]
