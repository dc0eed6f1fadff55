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

Nothing here polls: planes wait on the build's promise
(:func:`loadstone.toolkit.wait_done`, woken by the build or by the plane's
own cancel and deadline), and the build thread waits on its slices with
:func:`loadstone.as_completed` under a :class:`loadstone.LoadContext` of its
own, woken by each slice, by its cancel, or by the starvation signal below.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import loadstone
from loadstone import (
    Image,
    ImageLoadObject,
    InvalidImageError,
    LoadCancelledError,
    LoadContext,
    LoadstoneError,
    LoadTimeoutError,
    PluginError,
    use_load_context,
)
from loadstone.geometry import VolumeGeometry, slice_plane, volume_geometry
from loadstone.toolkit import LRUCache, rebrand, wait_done
from loadstone.volume import Volume, check_budget, planes_from_metadata, series_geometry, stack_volume

from ._grammar import Source, is_mpr_id, parse_mpr_id
from .config import config

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
    "unbox",
    "describe",
]

_log = logging.getLogger("loadstone.mpr")

CACHE_PREFIX = "mpr-volume:"
_INFO_ENTRIES = 32
#: Tries to get a volume that keeps being cancelled or evicted before it is used.
_ATTEMPTS = 3


# -- sources -----------------------------------------------------------------------
_registered: dict[str, tuple[str, ...]] = {}
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
    info = _infos.get(source.key)
    if info is not None:
        return info
    ids = _source_ids(source)
    if len(ids) >= 2:
        known = series_geometry(ids, source=describe(source),
                                orientation_tolerance=config.orientation_tolerance,
                                spacing_tolerance=config.spacing_tolerance)
        info = SourceInfo(source, ids, known.geometry, known.itemsize_hint, known.rescale_uniform)
    else:
        info = SourceInfo(source, ids, None, 1, None)
    _infos.put(source.key, info)
    return info


#: What metadata says about the last few sources (source key -> SourceInfo).
_infos: LRUCache[str, SourceInfo] = LRUCache(_INFO_ENTRIES)


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
    _infos.pop(source.key)
    loadstone.cache.remove_image_load_object(CACHE_PREFIX + source.key)


def clear() -> int:
    """Drop every built volume from the cache and all remembered geometry; returns volumes dropped."""
    _infos.clear()
    dropped = 0
    for key in loadstone.cache.keys():  # noqa: SIM118 - the cache is not iterable
        if key.startswith(CACHE_PREFIX):
            dropped += loadstone.cache.remove_image_load_object(key)
    return dropped


# -- the pool-starvation guard -------------------------------------------------------
# A plane load holds a request-pool slot (and the thread it runs on) while it
# waits for its volume, whose slices need slots of their own (PREFETCH).  If
# waiting planes fill every slot the slices could use, nothing can move: then
# the build loads its remaining slices directly through their loaders, outside
# the pool, running each on its own thread when no worker has taken it.  The
# condition can only arise when a plane starts waiting, so that is where it is
# checked, and once when a build starts loading its slices: nothing polls.
class _StarvationGuard:
    """Plane loads waiting for volumes, by request type, and the builds loading slices meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, int] = {}
        self._loading: set[_Build] = set()

    @contextlib.contextmanager
    def waiting(self, request_type: str | None) -> Iterator[None]:
        """Count a plane load that holds a pool slot while it waits (None: not a pool load)."""
        if request_type is None:
            yield
            return
        with self._lock:
            self._waiting[request_type] = self._waiting.get(request_type, 0) + 1
            loading = list(self._loading)
        if loading and self.starved():
            for build in loading:
                build.pool_starved()
        try:
            yield
        finally:
            with self._lock:
                self._waiting[request_type] -= 1

    def watch(self, build: _Build) -> None:
        """``build`` is loading its slices: tell it when the pool is (or becomes) starved."""
        with self._lock:
            self._loading.add(build)
        if self.starved():
            build.pool_starved()

    def unwatch(self, build: _Build) -> None:
        with self._lock:
            self._loading.discard(build)

    def starved(self) -> bool:
        """True when waiting planes hold every PREFETCH slot, or every slot."""
        with self._lock:
            prefetch = self._waiting.get("prefetch", 0)
            total = sum(self._waiting.values())
        if not total:
            return False
        pool = loadstone.pool
        return prefetch >= pool.get_max_concurrent("prefetch") or total >= pool.get_max_concurrent(None)


_guard = _StarvationGuard()


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
        #: The build's cancellation; the current load on its thread, so waits inside stop at a cancel.
        self.context = LoadContext(self.key)
        #: Settled once the request pool is found starved while the slices load (see above).
        self.starved = ImageLoadObject(image_id=self.key)
        self._lock = threading.Lock()
        self._waiters = 0
        self._listeners: dict[int, Any] = {}

    def start(self) -> None:
        threading.Thread(target=self._run, name="loadstone-mpr-build", daemon=True).start()

    def _run(self) -> None:
        try:
            with use_load_context(self.context):
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
        """Stop the build (the slices already loading carry on into the cache)."""
        self.context.cancel(LoadCancelledError(f"the volume build of {describe(self.source)} was cancelled",
                                               image_id=self.source.id))

    def check(self) -> None:
        """Raise the build's cancellation, if any."""
        self.context.check()

    def pool_starved(self) -> None:
        """Wake the slice loading: it goes around the request pool."""
        self.starved.promise.cancel()  # settles the signal (a no-op once settled)

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
        _infos.pop(self.source.key)
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


def source_volume(source: Source, timeout: float | None = None, *, image_id: str | None = None,
                  request_type: str | None = None) -> Volume:
    """The volume of a parsed source, built (and cached) if need be; see :func:`get_volume`.

    The wait ends at ``timeout``, or at the current load's cancel or deadline.
    A plane load passes its ``image_id`` (its errors name it) and its
    ``request_type`` (it counts for the starvation guard while it waits).
    """
    context = loadstone.current_load()
    last: LoadstoneError | None = None
    for _ in range(_ATTEMPTS):
        build = acquire(source)
        if not build.promise.done():
            token = build.join(context)
            try:
                with _guard.waiting(request_type):
                    if not wait_done(build.promise, context, timeout):
                        raise LoadTimeoutError(f"the volume of {describe(source)} was still building after "
                                               f"{timeout:g} s", image_id=image_id or source.id)
            finally:
                build.leave(token)
        try:
            volume = unbox(build.load_object.result(0))
        except LoadCancelledError as exc:  # all its waiters left (not this one: wait_done raised): again
            last = exc
            continue
        except LoadstoneError as exc:
            if image_id is None:
                raise
            raise rebrand(exc, image_id) from exc  # each waiting plane raises its own
        if volume is not None:
            return volume
        # evicted a moment ago: build again
    error = last or LoadCancelledError(f"the volume of {describe(source)} kept leaving the cache before "
                                       "it could be used; raise the cache's maximum size")
    if image_id is None and last is not None:
        raise error
    raise rebrand(error, image_id or source.id) from last


# -- building ------------------------------------------------------------------------
def _check_budget(source: Source, geometry: VolumeGeometry, itemsize: int) -> None:
    check_budget(geometry, itemsize, config.max_volume_bytes, describe(source),
                 "loadstone_mpr.config.max_volume_bytes")


def _slice_image(load_object: ImageLoadObject, image_id: str) -> Image:
    image = load_object.result(0)  # a failed slice fails the volume with its typed error
    if not isinstance(image, Image):
        raise PluginError(f"slice {image_id!r} did not load as a loadstone.Image", image_id=image_id)
    return image


def _load_slices(ids: Sequence[str], build: _Build) -> list[Image]:
    """Load the slices through the request pool (PREFETCH), reporting progress and honouring cancel.

    Runs on the build's thread, with the build's context current: the wait
    (:func:`loadstone.as_completed`) ends at the build's cancel.  When the
    starvation guard signals, the remaining slices load around the pool.
    """
    total = len(ids)
    loads = loadstone.load_images(ids, request_type="prefetch", priority=config.slice_priority)
    positions: dict[int, list[int]] = {}
    for n, load_object in enumerate(loads):
        positions.setdefault(id(load_object), []).append(n)
    images: list[Image | None] = [None] * total
    filled = 0
    _guard.watch(build)
    try:
        # Breaking out drops the iterator, which closes it (and so unregisters its wake-up).
        for load_object in loadstone.as_completed([*loads, build.starved]):
            if load_object is build.starved:
                _log.info("request pool full of planes waiting for %s; loading its slices directly",
                          describe(build.source))
                _load_directly(ids, loads, images, build, filled)
                break
            for n in positions[id(load_object)]:
                images[n] = _slice_image(load_object, ids[n])
                filled += 1
                build.progress(filled, total)
            if filled == total:
                break
    finally:
        _guard.unwatch(build)
    return cast(list[Image], images)


def _load_directly(ids: Sequence[str], loads: Sequence[ImageLoadObject], images: list[Image | None],
                   build: _Build, filled: int) -> None:
    """Fill the remaining ``images`` through their scheme's loaders, outside the request pool.

    Every direct load starts at once (idle workers take them); the build's
    thread then runs each one that no worker took itself, so the volume
    completes even when every worker thread is held by a waiting plane.
    """
    total = len(ids)
    direct = [None if images[n] is not None or loads[n].done() else _direct_load(ids[n])
              for n in range(total)]
    try:
        for n, load_object in enumerate(direct):
            if images[n] is not None:
                continue
            if load_object is None:  # its pooled load finished meanwhile
                load_object = loads[n]
            elif not load_object.done() and load_object.run_inline is not None:
                load_object.run_inline()  # runs it here unless a worker has it already
            wait_done(load_object.promise, build.context)
            images[n] = _slice_image(load_object, ids[n])
            filled += 1
            build.progress(filled, total)
    finally:
        for load_object in direct:
            if load_object is not None:
                load_object.cancel()  # the rest, after a failure or a cancel (no-op when done)


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
