"""Volumes: built once per series from its slices, shared by every plane, kept in the core cache.

A volume is built on a thread of its own: expand the series
(:func:`loadstone.series_image_ids`, or the ids given to
:func:`create_volume`), read each slice's ``imagePlaneModule`` to order the
slices along their normal and check them, refuse it if it would exceed
``config.max_volume_bytes``, load the slices with :func:`loadstone.load_images`
at ``PREFETCH`` priority, and copy them into one array (float32 in modality
units when slopes or intercepts differ between slices, else the stored type
with one shared rescale).  The build's load object lives in
``loadstone.cache`` under ``mpr-volume:<series=… | volume=…>``: concurrent
planes of one series share one build, its bytes count against the cache
budget, and eviction frees it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import loadstone
from loadstone import (
    Image,
    ImageLoadObject,
    InvalidImageError,
    LoadCancelledError,
    LoadstoneError,
    PluginError,
)
from loadstone.geometry import VolumeGeometry, slice_plane, volume_geometry
from loadstone.volume import Volume, check_budget, planes_from_metadata, series_geometry, stack_volume

from ._config import config
from ._grammar import Source, is_mpr_id, parse_mpr_id

__all__ = [
    "CACHE_PREFIX",
    "Volume",
    "SourceInfo",
    "create_volume",
    "remove_volume",
    "get_volume",
    "source_volume",
    "clear",
    "acquire",
    "source_info",
    "cached_volume",
    "volume_result",
    "unbox",
    "count_waiting",
    "plane_error",
    "describe",
]

_log = logging.getLogger("loadstone.mpr")

CACHE_PREFIX = "mpr-volume:"
_INFO_ENTRIES = 32


# -- sources -----------------------------------------------------------------------
_registered: dict[str, tuple[str, ...]] = {}
_infos: OrderedDict[str, SourceInfo] = OrderedDict()
_lock = threading.Lock()


def describe(source: Source) -> str:
    """How messages name a source."""
    return f"series {source.id!r}" if source.kind == "series" else f"volume {source.id!r}"


def _source_ids(source: Source) -> tuple[str, ...]:
    if source.kind == "volume":
        with _lock:
            ids = _registered.get(source.id)
        if ids is None:
            raise InvalidImageError(
                f"no volume {source.id!r}; register it with "
                "loadstone_mpr.create_volume(volume_id, image_ids)",
                image_id=source.id)
        return ids
    return tuple(loadstone.series_image_ids(source.id))


@dataclass(frozen=True, eq=False)
class SourceInfo:
    """What metadata alone says about a source, before any pixel loads."""

    source: Source
    image_ids: tuple[str, ...]  # as the source lists them
    geometry: VolumeGeometry | None  # None when the metadata lacks geometry until pixels load
    itemsize_hint: int  # bytes per voxel the metadata promises at least
    rescale_uniform: bool | None  # one slope and intercept for all slices (None: unknown)


def source_info(source: Source) -> SourceInfo:
    """Ids and metadata-only geometry of a source (remembered until its volume leaves the cache).

    Raises the typed error of a bad source (unknown series, mixed orientations, …).
    """
    with _lock:
        info = _infos.get(source.key)
        if info is not None:
            _infos.move_to_end(source.key)
            return info
    ids = _source_ids(source)
    if len(ids) >= 2:
        known = series_geometry(ids, source=describe(source),
                                orientation_tolerance=config.orientation_tolerance,
                                spacing_tolerance=config.spacing_tolerance)
        info = SourceInfo(source, ids, known.geometry, known.itemsize_hint, known.rescale_uniform)
    else:
        info = SourceInfo(source, ids, None, 1, None)
    with _lock:
        _infos[source.key] = info
        while len(_infos) > _INFO_ENTRIES:
            _infos.popitem(last=False)
    return info


def _forget(source_key: str) -> None:
    with _lock:
        _infos.pop(source_key, None)


def create_volume(volume_id: str, image_ids: Iterable[str]) -> None:
    """Register ``image_ids`` as a volume, for ``mpr:<plane>;volume=<volume_id>`` and :func:`get_volume`.

    Nothing loads yet: the volume is built on first use.  Registering other
    ids under the same volume id drops the volume built from the old ones.
    """
    if not isinstance(volume_id, str) or not volume_id:
        raise ValueError("volume_id must be a non-empty str")
    if isinstance(image_ids, str):
        raise TypeError("image_ids must be an iterable of image ids, not one str")
    ids = tuple(image_ids)
    if not all(isinstance(i, str) and i for i in ids):
        raise TypeError("image_ids must be non-empty str image ids")
    for image_id in ids:  # its own planes: the build would wait for itself
        if is_mpr_id(image_id):
            with contextlib.suppress(InvalidImageError):
                if parse_mpr_id(image_id).source == Source("volume", volume_id):
                    raise ValueError(f"volume {volume_id!r} cannot contain its own planes ({image_id!r})")
    with _lock:
        old = _registered.get(volume_id)
        _registered[volume_id] = ids
    if old is not None and old != ids:
        _drop(Source("volume", volume_id))


def remove_volume(volume_id: str) -> bool:
    """Forget a volume registered with :func:`create_volume` (and free it); False if unknown."""
    with _lock:
        known = _registered.pop(volume_id, None) is not None
    _drop(Source("volume", volume_id))
    return known


def _drop(source: Source) -> None:
    _forget(source.key)
    loadstone.cache.remove_image_load_object(CACHE_PREFIX + source.key)


def clear() -> int:
    """Drop every built volume from the cache and all remembered geometry; returns volumes dropped."""
    with _lock:
        _infos.clear()
    dropped = 0
    for key in loadstone.cache.keys():  # noqa: SIM118 - the cache is not iterable
        if key.startswith(CACHE_PREFIX):
            dropped += loadstone.cache.remove_image_load_object(key)
    return dropped


# -- the pool-starvation guard -------------------------------------------------------
# A plane load holds a request-pool slot while it waits for its volume, whose
# slices need slots of their own (PREFETCH).  If waiting planes fill every
# slot the slices could use, nothing can move: then the build loads its
# remaining slices directly through their loaders, outside the pool.
_waiting: dict[str, int] = {}
_waiting_lock = threading.Lock()


def count_waiting(request_type: str, delta: int) -> None:
    """Track plane loads (by request type) that hold a pool slot while waiting for a volume."""
    with _waiting_lock:
        _waiting[request_type] = _waiting.get(request_type, 0) + delta


def _pool_starved() -> bool:
    with _waiting_lock:
        prefetch = _waiting.get("prefetch", 0)
        total = sum(_waiting.values())
    if not total:
        return False
    pool = loadstone.pool
    return prefetch >= pool.get_max_concurrent("prefetch") or total >= pool.get_max_concurrent(None)


def _direct_load(image_id: str) -> ImageLoadObject:
    """Start a slice load through its scheme's loader, bypassing the request pool (see above)."""
    loader = loadstone.get_image_loader(loadstone.scheme_of(image_id))
    load_object = loader(image_id, {"request_type": "prefetch"})
    if not isinstance(load_object, ImageLoadObject):
        raise PluginError(f"loader {loader!r} returned {type(load_object).__name__}, expected an "
                          "ImageLoadObject", image_id=image_id)
    return load_object


# -- builds --------------------------------------------------------------------------
def _settle(promise: concurrent.futures.Future[Any], value: Any = None,
            error: BaseException | None = None) -> None:
    if promise.done():
        return
    try:
        if error is not None:
            promise.set_exception(error)
        else:
            promise.set_result(value)
    except concurrent.futures.InvalidStateError:  # cancelled meanwhile
        pass


class _VolumeBox:
    """What a volume's cache entry holds: the volume until the cache lets go of it.

    The core cache's entries sit in reference cycles (promise, callback,
    load object), so an evicted volume would wait for the cyclic garbage
    collector; emptying the box on ``decache`` frees the voxels at once.
    """

    __slots__ = ("volume", "size_in_bytes")

    def __init__(self, volume: Volume) -> None:
        self.volume: Volume | None = volume
        self.size_in_bytes = volume.size_in_bytes


class _VolumeLoad(ImageLoadObject):
    """The cache entry of a volume: an ImageLoadObject whose result is a :class:`Volume`."""

    __slots__ = ("build",)
    build: _Build


class _Build:
    """One volume build: its thread, its waiters, their progress, its cancellation."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.key = CACHE_PREFIX + source.key
        self.promise: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.load_object = _VolumeLoad(self.promise, self.cancel, self._decache, self.key)
        self.load_object.build = self
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._waiters = 0
        self._listeners: dict[int, Any] = {}

    def start(self) -> None:
        threading.Thread(target=self._run, name="loadstone-mpr-build", daemon=True).start()

    def _run(self) -> None:
        try:
            volume = _build_volume(self)
        except BaseException as exc:
            if not isinstance(exc, LoadstoneError):
                error: LoadstoneError = PluginError(
                    f"building the volume of {describe(self.source)} failed: {type(exc).__name__}: {exc}",
                    image_id=self.source.id)
                error.__cause__ = exc
                exc = error
            _settle(self.promise, error=exc)
        else:
            if volume.size_in_bytes > loadstone.cache.get_maximum_size_bytes():
                _log.warning("the volume of %s (%d bytes) is larger than loadstone.cache allows; it is "
                             "rebuilt for every plane until the cache maximum is raised",
                             describe(self.source), volume.size_in_bytes)
            _settle(self.promise, _VolumeBox(volume))

    # -- cancellation and waiters ------------------------------------------------------
    def cancel(self) -> None:
        """Stop the build at its next check (the slices already loading carry on into the cache)."""
        self._cancelled.set()

    def check(self) -> None:
        if self._cancelled.is_set():
            raise LoadCancelledError(f"the volume build of {describe(self.source)} was cancelled",
                                     image_id=self.source.id)

    def join(self, context: Any | None) -> int:
        """Count a waiter (and its load context, for progress); returns a token for :meth:`leave`."""
        token = id(object()) if context is None else id(context)
        with self._lock:
            self._waiters += 1
            if context is not None:
                self._listeners[token] = context
        return token

    def leave(self, token: int) -> None:
        """A waiter is gone; the last one leaving an unfinished build cancels it."""
        with self._lock:
            self._waiters -= 1
            self._listeners.pop(token, None)
            last = self._waiters <= 0
        if last and not self.promise.done():
            self.cancel()
            self.load_object.cancel()

    def progress(self, done: int, total: int) -> None:
        with self._lock:
            listeners = list(self._listeners.values())
        for context in listeners:
            context.report_progress(done, total)

    def _decache(self) -> None:
        _forget(self.source.key)
        promise = self.promise
        if promise.done() and not promise.cancelled() and promise.exception() is None:
            promise.result().volume = None


def acquire(source: Source) -> _Build:
    """The build of ``source``'s volume: the cached one, or a new one started now."""
    key = CACHE_PREFIX + source.key
    cache = loadstone.cache
    for _ in range(3):
        cached = cache.get_image_load_object(key)
        if isinstance(cached, _VolumeLoad):
            return cached.build
        if cached is not None:  # someone else's object under our key
            cache.remove_image_load_object(key)
        build = _Build(source)
        shared = cache.put_image_load_object(key, build.load_object)
        if shared is build.load_object:
            build.start()
            return build
        if isinstance(shared, _VolumeLoad):
            return shared.build
    raise PluginError(f"cache key {key!r} is taken by something that is not a volume", image_id=key)


def cached_volume(source: Source) -> Volume | None:
    """The finished volume of ``source`` if the cache holds one (without touching its recency)."""
    load_object = loadstone.cache.peek(CACHE_PREFIX + source.key)
    if load_object is None or not load_object.done():
        return None
    try:
        box = load_object.promise.result(0)
    except BaseException:
        return None
    return box.volume if isinstance(box, _VolumeBox) else None


def volume_result(build: _Build, timeout: float | None = None) -> Volume | None:
    """Wait for a build's volume (typed errors); None if the cache dropped it meanwhile (build again)."""
    return unbox(build.load_object.result(timeout))


def unbox(result: object) -> Volume | None:
    """The volume in a volume load's result; None once the cache has let go of it."""
    return result.volume if isinstance(result, _VolumeBox) else None


def get_volume(volume_or_series_id: str, timeout: float | None = None) -> Volume:
    """The volume of a registered volume id or of a series id, built (and cached) if need be.

    ``array, affine = get_volume("example://ct")`` gives the voxels
    ``(slices, rows, columns)`` and the 4x4 affine from ``(i, j, k, 1)`` to
    LPS mm.  ``timeout`` bounds the wait (:class:`~loadstone.LoadTimeoutError`).
    """
    if not isinstance(volume_or_series_id, str) or not volume_or_series_id:
        raise ValueError("give a volume id or a series id")
    with _lock:
        registered = volume_or_series_id in _registered
    return source_volume(Source("volume" if registered else "series", volume_or_series_id), timeout)


def source_volume(source: Source, timeout: float | None = None) -> Volume:
    """The volume of a parsed source, built (and cached) if need be; see :func:`get_volume`."""
    for _ in range(3):
        build = acquire(source)
        token = build.join(None)
        try:
            volume = volume_result(build, timeout)
        finally:
            build.leave(token)
        if volume is not None:
            return volume
    raise LoadCancelledError(f"the volume of {describe(source)} kept leaving the cache before it could "
                             "be used; raise the cache's maximum size", image_id=source.id)


# -- building ------------------------------------------------------------------------
def _check_budget(source: Source, geometry: VolumeGeometry, itemsize: int) -> None:
    check_budget(geometry, itemsize, config.max_volume_bytes, describe(source),
                 "loadstone_mpr.config.max_volume_bytes")


def _put(done: queue.SimpleQueue[tuple[int, ImageLoadObject]], n: int, load_object: ImageLoadObject) -> None:
    done.put((n, load_object))


def _load_slices(ids: Sequence[str], build: _Build) -> list[Image]:
    """Load the slices through the request pool (PREFETCH), reporting progress and honouring cancel."""
    total = len(ids)
    loads = loadstone.load_images(ids, request_type="prefetch", priority=config.slice_priority)
    done: queue.SimpleQueue[tuple[int, ImageLoadObject]] = queue.SimpleQueue()
    for n, load_object in enumerate(loads):
        load_object.add_done_callback(partial(_put, done, n))
    images: list[Image | None] = [None] * total
    remaining = total
    bypassed = False
    while remaining:
        build.check()
        try:
            n, load_object = done.get(timeout=0.05)
        except queue.Empty:
            if not bypassed and _pool_starved():
                bypassed = True
                _log.info("request pool full of planes waiting for %s; loading its slices directly",
                          describe(build.source))
                for m in range(total):
                    if images[m] is None and not loads[m].done():
                        direct = _direct_load(ids[m])
                        direct.add_done_callback(partial(_put, done, m))
            continue
        if images[n] is not None:
            continue  # the second of a pooled and a direct load of one slice
        image = load_object.result(0)
        if not isinstance(image, Image):
            raise PluginError(f"slice {ids[n]!r} did not load as a loadstone.Image", image_id=ids[n])
        images[n] = image
        remaining -= 1
        build.progress(total - remaining, total)
    return cast(list[Image], images)


def _build_volume(build: _Build) -> Volume:
    source = build.source
    info = source_info(source)
    ids = info.image_ids
    where = describe(source)
    if len(ids) < 2:
        raise InvalidImageError(
            f"{where} has {len(ids)} slice(s){' (' + repr(ids[0]) + ')' if ids else ''}; "
            "a volume needs at least two", image_id=ids[0] if ids else source.id)
    geometry = info.geometry
    if geometry is not None:
        # Refused before a single slice loads, from what the metadata promises.
        _check_budget(source, geometry, info.itemsize_hint)
        images = _load_slices(geometry.image_ids, build)
    else:
        loaded = _load_slices(ids, build)
        by_id = {image_id: image for image_id, image in zip(ids, loaded, strict=True)}
        planes = planes_from_metadata(ids, by_id)
        if planes is None:
            missing = [i for i in ids if slice_plane(i, loadstone.metadata.get("imagePlaneModule", i),
                                                     (by_id[i].row_pixel_spacing,
                                                      by_id[i].column_pixel_spacing)) is None]
            raise InvalidImageError(
                f"slice(s) {', '.join(map(repr, missing[:5]))} of {where} have no patient "
                "geometry (imagePlaneModule image_position_patient, image_orientation_patient, "
                "pixel_spacing); MPR needs it", image_id=missing[0] if missing else source.id)
        geometry = volume_geometry(planes, source=where, orientation_tolerance=config.orientation_tolerance,
                                   spacing_tolerance=config.spacing_tolerance)
        images = [by_id[image_id] for image_id in geometry.image_ids]
    build.check()
    return stack_volume(source.key, images, geometry, max_bytes=config.max_volume_bytes, where=where,
                        limit_name="loadstone_mpr.config.max_volume_bytes", check=build.check)


def plane_error(error: LoadstoneError, image_id: str) -> LoadstoneError:
    """A copy of a volume's error that names the plane, so each waiting plane raises its own."""
    fresh = copy.copy(error)
    fresh.image_id = image_id
    fresh.__cause__ = error
    return fresh
