"""``from_series``: a series ordered in space as a lazy :class:`loadstone.volume.Volume`.

The ordering, the checks (mixed orientation, uneven spacing, a missing
slice, mixed series) and the affine are loadstone's own
(:func:`loadstone.volume.series_geometry`), from metadata alone, the same
code path as ``loadstone.load_volume`` and ``loadstone_mpr.get_volume``;
only the array differs: a dask array whose chunks load on the workers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import loadstone
from loadstone.errors import InvalidImageError, UnsupportedError
from loadstone.geometry import ORIENTATION_TOLERANCE, SPACING_TOLERANCE
from loadstone.volume import Volume, series_geometry

from .array import images_array
from .graph import layout_for, prepare

__all__ = ["from_series"]


def _first(value: Any) -> float | None:
    """A window value: DICOM allows several, the first is the default (as loaded images take it)."""
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _rescale_of(image_id: str) -> tuple[float, float]:
    answer = loadstone.metadata.get("modalityLutModule", image_id)
    if not isinstance(answer, Mapping):
        return 1.0, 0.0
    slope, intercept = answer.get("rescale_slope"), answer.get("rescale_intercept")
    return (float(slope) if slope is not None else 1.0, float(intercept) if intercept is not None else 0.0)


def from_series(series_id: str, *, images_per_chunk: int | None = None, rescale: bool = False,
                client: Any = None, orientation_tolerance: float = ORIENTATION_TOLERANCE,
                spacing_tolerance: float = SPACING_TOLERANCE, **load_options: Any) -> Volume:
    """The series as a lazy :class:`~loadstone.volume.Volume`: ``array, affine = from_series(id)``.

    ``array`` is a dask array ``(slices, rows, columns)`` ordered along the
    slice normal; ``affine`` maps ``(i, j, k, 1)`` to LPS mm; ``spacing``,
    ``image_ids``, ``slope``/``intercept`` and the window come with it, as
    from ``loadstone.load_volume``.  Slices that share one rescale keep their
    stored type (``volume.modality_array()`` converts, lazily); differing
    rescales, an unknown rescale or ``rescale=True`` give float32 modality
    values.  Refuses what ``load_volume`` refuses, with the same errors,
    before any pixel loads; the geometry must be in the metadata
    (``imagePlaneModule``).  Other arguments as :func:`from_image_ids`.
    """
    if not isinstance(series_id, str):
        raise TypeError(f"from_series takes one series id (str), got {type(series_id).__name__}; "
                        "image ids go to from_image_ids")
    where = f"series {series_id!r}"
    info = series_geometry(series_id, source=where, orientation_tolerance=orientation_tolerance,
                           spacing_tolerance=spacing_tolerance, options=load_options)
    geometry = info.geometry
    if geometry is None:
        raise InvalidImageError(
            f"slices of {where} have no patient geometry in their metadata (imagePlaneModule "
            "image_position_patient, image_orientation_patient, pixel_spacing); a lazy volume needs it "
            "before any pixel loads (loadstone.load_volume loads the pixels first)",
            image_id=info.image_ids[0])
    ids = list(geometry.image_ids)
    spec, client = prepare(ids, client, load_options)
    layout = layout_for(ids[0], spec, client)
    _, rows, columns = geometry.shape
    if len(layout.shape) != 2:
        raise UnsupportedError(f"{where} has colour slices ({layout.describe()}); a volume is built from "
                               "grey images only", image_id=ids[0])
    if layout.shape != (rows, columns):
        raise InvalidImageError(f"slice {ids[0]!r} of {where} has {layout.describe()} pixels where its "
                                f"metadata says {rows}x{columns}", image_id=ids[0])
    slope, intercept = _rescale_of(ids[0])
    modality = bool(rescale) or not info.rescale_uniform
    if modality:
        slope, intercept = 1.0, 0.0
    warm = loadstone.scheme_of(series_id) in spec.settings.series_warmup_schemes
    spec = dataclasses.replace(spec, layout=layout, rescale=modality, series_id=series_id if warm else None)
    voi = loadstone.metadata.get("voiLutModule", ids[0])
    voi = voi if isinstance(voi, Mapping) else {}
    pixel = loadstone.metadata.get("imagePixelModule", ids[0])
    photometric = pixel.get("photometric_interpretation") if isinstance(pixel, Mapping) else None
    return Volume(
        id=series_id, array=images_array(ids, spec, images_per_chunk), geometry=geometry,
        slope=slope, intercept=intercept,
        window_center=_first(voi.get("window_center")), window_width=_first(voi.get("window_width")),
        voi_lut_function=str(voi.get("voi_lut_function") or "LINEAR"),
        photometric_interpretation=str(photometric or "MONOCHROME2"),
    )
