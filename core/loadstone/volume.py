"""Volumes from series: :func:`load_volume` and the :class:`Volume` it returns.

A series' slices are ordered along their normal and checked from metadata
alone (:mod:`loadstone.geometry`), refused before any pixel loads if they
would exceed the memory cap, loaded through the request pool
(``load_images``) and stacked into one ``(slices, rows, columns)`` array.
The mpr plugin builds the volumes it reslices with these same steps, and
the dask plugin places its lazy volumes with the same geometry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _api, _state
from ._completion import as_completed
from ._image import Image
from .errors import InvalidImageError, ResourceLimitError, UnsupportedError
from .geometry import (
    ORIENTATION_TOLERANCE,
    SPACING_TOLERANCE,
    SlicePlane,
    VolumeGeometry,
    names_shown,
    slice_plane,
    volume_geometry,
)

__all__ = [
    "Volume",
    "SeriesGeometry",
    "DEFAULT_MAX_VOLUME_BYTES",
    "load_volume",
    "series_geometry",
    "planes_from_metadata",
    "stack_volume",
]

#: The largest volume :func:`load_volume` builds unless told otherwise (4 GiB).
DEFAULT_MAX_VOLUME_BYTES = 4 << 30


@dataclass(eq=False)
class Volume:
    """A built volume: ``array[k, j, i]`` lies at ``affine @ (i, j, k, 1)`` in LPS mm.

    ``array`` holds stored values (read-only: caches may share it; copy it
    to edit); modality units are ``array * slope + intercept`` (or
    :meth:`modality_array`).  ``array, affine = volume`` unpacks the two that
    matter most.
    """

    id: str
    array: Any  # numpy.ndarray, or a dask array (loadstone-dask)
    geometry: VolumeGeometry
    slope: float = 1.0
    intercept: float = 0.0
    window_center: float | None = None
    window_width: float | None = None
    voi_lut_function: str = "LINEAR"
    photometric_interpretation: str = "MONOCHROME2"
    min_value: float = 0.0
    max_value: float = 0.0
    size_in_bytes: int = field(default=0)

    def __post_init__(self) -> None:
        if not self.size_in_bytes:
            self.size_in_bytes = int(self.array.nbytes)

    @property
    def affine(self) -> np.ndarray:
        """4x4 map from voxel index ``(i=column, j=row, k=slice, 1)`` to LPS mm."""
        return self.geometry.affine

    @property
    def image_ids(self) -> tuple[str, ...]:
        """The source slices, in array order (increasing along the slice normal)."""
        return self.geometry.image_ids

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along (columns, rows, slices)."""
        return self.geometry.spacing

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(slices, rows, columns)``."""
        return self.geometry.shape

    def modality_array(self) -> Any:
        """The voxels in modality units (float32), a new array."""
        data = self.array.astype(np.float32)
        if self.slope != 1.0:
            data = data * np.float32(self.slope)
        if self.intercept != 0.0:
            data = data + np.float32(self.intercept)
        return data

    def __iter__(self) -> Iterator[Any]:
        yield self.array
        yield self.affine

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        array = np.asarray(self.array)
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        nk, nj, ni = self.geometry.shape
        return (f"Volume({self.id!r}, {ni}x{nj}x{nk} {self.array.dtype}, "
                f"spacing={tuple(round(s, 4) for s in self.spacing)} mm)")


@dataclass(frozen=True, eq=False)
class SeriesGeometry:
    """What metadata alone says about a series, before any pixel loads."""

    image_ids: tuple[str, ...]  # as the series lists them
    geometry: VolumeGeometry | None  # None when the metadata lacks geometry until pixels load
    itemsize_hint: int  # bytes per voxel the metadata promises at least
    rescale_uniform: bool | None  # one slope and intercept for all slices (None: unknown)


def _rows_columns(image_id: str, module: Any) -> tuple[int | None, int | None]:
    pixel = _state.metadata.get("imagePixelModule", image_id)
    for answer in (module, pixel):
        if isinstance(answer, Mapping) and isinstance(answer.get("rows"), int) \
                and isinstance(answer.get("columns"), int):
            return answer["rows"], answer["columns"]
    return None, None


def planes_from_metadata(image_ids: Sequence[str], images: Mapping[str, Image] | None = None
                         ) -> list[SlicePlane] | None:
    """Each slice's plane from ``imagePlaneModule``, or None if one lacks geometry.

    ``images`` (already loaded) fill in spacing, rows and columns the
    metadata lacks.
    """
    planes = []
    for image_id in image_ids:
        module = _state.metadata.get("imagePlaneModule", image_id)
        image = images.get(image_id) if images else None
        fallback = (image.row_pixel_spacing, image.column_pixel_spacing) if image else (None, None)
        plane = slice_plane(image_id, module, fallback)
        if plane is None:
            return None
        if plane.rows is None or plane.columns is None:
            rows, columns = (image.rows, image.columns) if image else _rows_columns(image_id, module)
            if rows is None:
                return None
            plane = plane._replace(rows=rows, columns=columns)
        planes.append(plane)
    return planes


def _rescale_uniform(ids: Sequence[str]) -> bool | None:
    seen = set()
    for image_id in ids:
        answer = _state.metadata.get("modalityLutModule", image_id)
        if not isinstance(answer, Mapping):
            return None
        seen.add((answer.get("rescale_slope", 1.0), answer.get("rescale_intercept", 0.0)))
    return len(seen) <= 1


def _itemsize_hint(image_id: str) -> int:
    answer = _state.metadata.get("imagePixelModule", image_id)
    bits = answer.get("bits_allocated") if isinstance(answer, Mapping) else None
    return max(1, int(bits) // 8) if isinstance(bits, int) and bits > 0 else 1


def series_geometry(series: str | Iterable[str], *, source: str | None = None,
                    orientation_tolerance: float = ORIENTATION_TOLERANCE,
                    spacing_tolerance: float = SPACING_TOLERANCE,
                    options: Mapping[str, Any] | None = None) -> SeriesGeometry:
    """The ids of a series (a series id, or the ids themselves) and their geometry from metadata.

    ``options`` (load options: credentials…) go to the series expansion.
    Raises the typed error of a bad series (mixed orientations, uneven
    spacing, two slices at one position, fewer than two slices…).
    """
    ids = (tuple(_api.series_image_ids(series, **(options or {}))) if isinstance(series, str)
           else tuple(series))
    where = source or (f"series {series!r}" if isinstance(series, str) else "the slices")
    if len(ids) < 2:
        raise InvalidImageError(
            f"{where} has {len(ids)} slice(s){' (' + repr(ids[0]) + ')' if ids else ''}; "
            "a volume needs at least two", image_id=ids[0] if ids else None)
    planes = planes_from_metadata(ids)
    geometry = None if planes is None else volume_geometry(
        planes, source=where, orientation_tolerance=orientation_tolerance,
        spacing_tolerance=spacing_tolerance)
    return SeriesGeometry(ids, geometry, _itemsize_hint(ids[0]),
                          _rescale_uniform(ids) if geometry is not None else None)


def check_budget(geometry: VolumeGeometry, itemsize: int, max_bytes: int, where: str,
                 limit_name: str = "max_bytes") -> None:
    """Refuse a volume above ``max_bytes`` before anything is allocated (:class:`ResourceLimitError`)."""
    needed = geometry.nbytes(itemsize)
    if needed > max_bytes:
        nk, nj, ni = geometry.shape
        raise ResourceLimitError(
            f"the volume of {where} would take {needed} bytes ({ni}x{nj}x{nk}, {itemsize} bytes a voxel), "
            f"over {limit_name} = {max_bytes}; raise that limit to build it",
            image_id=geometry.image_ids[0] if geometry.image_ids else None)


def stack_volume(volume_id: str, images: Sequence[Image], geometry: VolumeGeometry, *,
                 max_bytes: int = DEFAULT_MAX_VOLUME_BYTES, where: str = "the series",
                 limit_name: str = "max_bytes", check: Any = None) -> Volume:
    """Stack loaded slices (in ``geometry.image_ids`` order) into a read-only :class:`Volume`.

    One rescale shared by every slice keeps the stored type; differing ones
    give float32 in modality units.  ``check()`` is called now and then
    (a build's cancellation).
    """
    _check_grey(images, where)
    _, rows, columns = geometry.shape
    odd = [image for image in images if image.pixel_data.shape != (rows, columns)]
    if odd:
        raise InvalidImageError(
            f"slice(s) {names_shown([i.image_id for i in odd])} of {where} have "
            f"{odd[0].pixel_data.shape[0]}x{odd[0].pixel_data.shape[1]} pixels where the volume has "
            f"{rows}x{columns}; a volume needs one size for all slices", image_id=odd[0].image_id)
    rescales = {(float(image.slope), float(image.intercept)) for image in images}
    uniform = len(rescales) == 1
    if uniform:
        dtype = np.result_type(*{image.pixel_data.dtype for image in images})
        slope, intercept = rescales.pop()
    else:
        dtype, slope, intercept = np.dtype(np.float32), 1.0, 0.0
    check_budget(geometry, dtype.itemsize, max_bytes, where, limit_name)
    array = np.empty(geometry.shape, dtype=dtype)
    lows, highs = [], []
    if uniform:
        # One C loop (as numpy.stack does): per-slice Python assignments cost ~10 % more.
        np.stack([image.pixel_data for image in images], out=array)
        lows = [image.min_pixel_value for image in images]
        highs = [image.max_pixel_value for image in images]
    else:
        for k, image in enumerate(images):
            np.multiply(image.pixel_data, image.slope, out=array[k], casting="unsafe")
            array[k] += np.float32(image.intercept)
            ends = (image.min_pixel_value * image.slope + image.intercept,
                    image.max_pixel_value * image.slope + image.intercept)
            lows.append(min(ends))
            highs.append(max(ends))
            if check is not None and k % 64 == 63:
                check()
    array.setflags(write=False)  # shared by every user of the volume: nobody may change it in place
    first = images[0]
    return Volume(
        id=volume_id, array=array, geometry=geometry, slope=slope, intercept=intercept,
        window_center=first.window_center, window_width=first.window_width,
        voi_lut_function=first.voi_lut_function,
        photometric_interpretation=first.photometric_interpretation,
        min_value=float(min(lows)), max_value=float(max(highs)),
    )


def _check_grey(images: Sequence[Image], where: str) -> None:
    colour = [image.image_id for image in images if image.color or image.pixel_data.ndim != 2]
    if colour:
        raise UnsupportedError(f"{where} has colour slices ({names_shown(colour)}); "
                               "a volume is built from grey images only", image_id=colour[0])


def _load_all(ids: Sequence[str], timeout: float | None, progress: Any,
              options: Mapping[str, Any]) -> list[Image]:
    loads = _api.load_images(ids, **options)
    for _ in as_completed(loads, timeout=timeout, progress=progress):
        pass
    return [load.result(0) for load in loads]


def load_volume(series: str | Iterable[str], *, timeout: float | None = None, progress: Any = False,
                max_bytes: int = DEFAULT_MAX_VOLUME_BYTES,
                orientation_tolerance: float = ORIENTATION_TOLERANCE,
                spacing_tolerance: float = SPACING_TOLERANCE, **options: Any) -> Volume:
    """Load a series (a series id, or its image ids) as one :class:`Volume`.

    ``array, affine = loadstone.load_volume("dicomfile:/data/ct")`` gives the
    voxels ``(slices, rows, columns)`` ordered along the slice normal and
    the 4x4 affine from ``(i, j, k, 1)`` to LPS mm; ``.spacing`` and
    ``.image_ids`` come with it.  The slices load through ``load_images``
    (``options`` go to the series expansion and to every load: ``headers``,
    ``priority``…), so they are
    cached and cancellable.  ``timeout`` bounds the whole build,
    ``progress=True`` shows a bar, ``max_bytes`` refuses a bigger volume
    (:class:`ResourceLimitError`) before anything loads when the metadata
    tells the size.  Mixed orientations, uneven spacing, a missing slice,
    differing sizes or colour slices raise :class:`InvalidImageError` /
    :class:`UnsupportedError` naming the slices.
    """
    where = f"series {series!r}" if isinstance(series, str) else "the slices"
    info = series_geometry(series, source=where, orientation_tolerance=orientation_tolerance,
                           spacing_tolerance=spacing_tolerance, options=options)
    volume_id = series if isinstance(series, str) else info.image_ids[0]
    geometry = info.geometry
    if geometry is not None:
        check_budget(geometry, info.itemsize_hint, max_bytes, where)
        images = _load_all(geometry.image_ids, timeout, progress, options)
    else:  # the metadata knows the geometry only once the pixels are loaded
        loaded = _load_all(info.image_ids, timeout, progress, options)
        by_id = {image.image_id: image for image in loaded}
        by_id.update(zip(info.image_ids, loaded, strict=True))
        planes = planes_from_metadata(info.image_ids, by_id)
        if planes is None:
            raise InvalidImageError(
                f"slices of {where} have no patient geometry (imagePlaneModule image_position_patient, "
                "image_orientation_patient, pixel_spacing); a volume needs it", image_id=info.image_ids[0])
        geometry = volume_geometry(planes, source=where, orientation_tolerance=orientation_tolerance,
                                   spacing_tolerance=spacing_tolerance)
        images = [by_id[image_id] for image_id in geometry.image_ids]
    return stack_volume(volume_id, images, geometry, max_bytes=max_bytes, where=where)
