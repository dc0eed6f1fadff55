"""The ``mpr`` image loader: parse the id, get the shared volume, reslice, return a full Image.

:func:`load_mpr_image` is a plain function made a loader by
:func:`loadstone.image_loader`, so it runs as the load itself: on a worker
thread, or on the caller's own when the caller waits for the result.  The
next plane of a built volume is then only the reslice, with no thread hop;
a plane whose volume is still building waits for it on that thread, woken
by the build or by the plane's own cancel or deadline (see ``_volume``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

import loadstone
from loadstone import Image, InvalidImageError, LoadstoneError, UnsupportedError
from loadstone.geometry import VolumeGeometry

from ._geometry import plane_grid, stack_count
from ._grammar import MprSpec, Source, is_mpr_id, parse_mpr_id, with_index
from ._reslice import resample
from ._volume import Volume, cached_volume, describe, source_info, source_volume

__all__ = ["load_mpr", "load_mpr_image", "make_plane_image", "geometry_for", "stack_image_ids"]


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


def load_mpr_image(image_id: str, options: Mapping[str, Any]) -> Image:
    """Load one ``mpr:`` image (the function behind :data:`load_mpr`)."""
    spec = parse_mpr_id(image_id)
    volume = source_volume(spec.source, image_id=image_id, request_type=_request_type(options))
    context = loadstone.current_load()
    if context is not None:
        context.check()
    return make_plane_image(image_id, spec, volume)


#: The ImageLoader of the ``mpr`` scheme: loadstone's own options only (another is refused as a typo).
load_mpr = loadstone.image_loader(load_mpr_image, options=())


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
