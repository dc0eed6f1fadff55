"""Where a derived plane's pixels are (a volume's own geometry is :mod:`loadstone.geometry`).

Everything is in DICOM patient coordinates (LPS: x to the patient's left, y
posterior, z head), in millimetres.  A volume is a ``(slices, rows, columns)``
array plus an affine taking voxel index ``(i=column, j=row, k=slice, 1)`` to
LPS; a plane is an origin (centre of its top-left pixel), two direction
cosines and two spacings, as DICOM's Image Plane module states it.  Both are
derived only from metadata, so a plane's geometry is known before any pixel
is loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from loadstone import InvalidImageError, ResourceLimitError
from loadstone.geometry import VolumeGeometry, clean, clean_list, cross3, unit

from ._grammar import MprSpec
from .config import config

__all__ = [
    "AXIS_ORIENTATIONS",
    "PlaneGrid",
    "plane_grid",
    "stack_count",
]

#: (row cosines, column cosines) of the standard planes, as radiologists view
#: them: axial from the feet (anterior up, patient's left on the right),
#: sagittal from the patient's left (anterior left, head up), coronal from the
#: front (head up, patient's left on the right).
AXIS_ORIENTATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
}
#: Which LPS coordinate ``position=`` gives for each axis plane.
POSITION_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}


# -- planes ------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PlaneGrid:
    """Where each pixel of a derived image lies, and how it is sampled."""

    origin: np.ndarray  # LPS centre of the top-left pixel (on the middle plane of a slab)
    row_cosines: np.ndarray  # along a row: direction of increasing column
    column_cosines: np.ndarray  # down a column: direction of increasing row
    rows: int
    columns: int
    row_spacing: float  # between rows, along column_cosines
    column_spacing: float  # between columns, along row_cosines
    slab_offsets: np.ndarray  # mm along the normal; [0.0] without a slab
    slab_thickness: float
    mode: str
    interp: str
    spacing_between_slices: float | None  # step of an axis-plane stack
    frame_of_reference_uid: str | None
    # Where the samples fall in the volume array, in (k, j, i) index order:
    index_origin: np.ndarray  # the top-left pixel
    index_row: np.ndarray  # one row down
    index_column: np.ndarray  # one column right
    index_slab: np.ndarray  # one mm along the normal

    @property
    def normal(self) -> np.ndarray:
        """``row_cosines x column_cosines``."""
        return cross3(self.row_cosines, self.column_cosines)

    @property
    def is_slab(self) -> bool:
        """True when several samples along the normal are projected into each pixel."""
        return len(self.slab_offsets) > 1

    def index_mapping(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Origin and per-row, per-column and per-slab-sample steps in array index order (k, j, i)."""
        return self.index_origin, self.index_row, self.index_column, self.index_slab

    def image_plane_module(self) -> dict[str, Any]:
        """The ``imagePlaneModule`` answer of the derived image (snake_case keys)."""
        thickness = self.slab_thickness or self.spacing_between_slices or min(self.row_spacing,
                                                                             self.column_spacing)
        return {
            "frame_of_reference_uid": self.frame_of_reference_uid,
            "rows": self.rows,
            "columns": self.columns,
            "image_orientation_patient": clean_list([*self.row_cosines, *self.column_cosines]),
            "row_cosines": clean_list(self.row_cosines),
            "column_cosines": clean_list(self.column_cosines),
            "image_position_patient": clean_list(self.origin),
            "pixel_spacing": [self.row_spacing, self.column_spacing],
            "row_pixel_spacing": self.row_spacing,
            "column_pixel_spacing": self.column_spacing,
            "slice_thickness": thickness,
            "spacing_between_slices": self.spacing_between_slices,
            "slice_location": clean(round(float(np.dot(self.origin, self.normal)), 6)),
        }


def _axis_step(geometry: VolumeGeometry, normal: np.ndarray) -> float:
    """Spacing of the volume axis closest to ``normal``: the step of an axis-plane stack."""
    alignment = np.abs(geometry.axes.T @ normal)
    return geometry.spacing[int(np.argmax(alignment))]


def _extent(points: np.ndarray, direction: np.ndarray) -> tuple[float, float]:
    projected = points @ direction
    return float(projected.min()), float(projected.max())


def stack_count(plane: str, geometry: VolumeGeometry) -> int:
    """How many ``index=`` planes of an axis-plane orientation cover the volume."""
    row, column = (np.asarray(v) for v in AXIS_ORIENTATIONS[plane])
    normal = cross3(row, column)
    low, high = _extent(geometry.corners(), normal)
    return math.floor((high - low) / _axis_step(geometry, normal) + 1e-6) + 1


def _up_to_column(image_id: str, normal: np.ndarray, up: np.ndarray | None) -> np.ndarray:
    """Column cosines (image down) from an up vector, defaulting to the nearest standard view."""
    if up is None:
        dominant = int(np.argmax(np.abs(normal)))
        # axial-like: anterior up; sagittal- and coronal-like: head up.
        up = np.array([0.0, -1.0, 0.0]) if dominant == 2 else np.array([0.0, 0.0, 1.0])
    in_plane = up - np.dot(up, normal) * normal
    norm = float(np.linalg.norm(in_plane))
    if norm < 1e-6:
        raise InvalidImageError("bad mpr id: up= is parallel to normal=; it must point along the plane",
                                image_id=image_id)
    return np.asarray(-in_plane / norm)


def _samples(low: float, high: float, spacing: float, count: int | None,
             centre: float | None) -> tuple[float, int]:
    """First sample and count along one in-plane axis: cover [low, high] or ``count`` around ``centre``."""
    if count is None:
        count = math.ceil((high - low) / spacing - 1e-6) + 1
        middle = (low + high) / 2.0
    else:
        middle = (low + high) / 2.0 if centre is None else centre
    return middle - (count - 1) * spacing / 2.0, count


def plane_grid(spec: MprSpec, geometry: VolumeGeometry, image_id: str) -> PlaneGrid:
    """Place the plane an id asks for in patient space.

    Defaults: isotropic pixels at the volume's finest spacing, covering the
    volume (or ``size`` pixels centred on it, or on ``point``); the middle
    plane of the stack when neither ``index`` nor ``position`` is given.
    """
    corners = geometry.corners()
    spacing_between: float | None = None
    if spec.is_axis_plane:
        row, column = (np.asarray(v, dtype=np.float64) for v in AXIS_ORIENTATIONS[spec.plane])
        normal = cross3(row, column)
        low, high = _extent(corners, normal)
        step = _axis_step(geometry, normal)
        count = math.floor((high - low) / step + 1e-6) + 1
        spacing_between = step
        if spec.position is not None:
            distance = spec.position * float(normal[POSITION_AXIS[spec.plane]])
            margin = step / 2.0 + spec.slab / 2.0
            if not low - margin <= distance <= high + margin:
                lo_mm, hi_mm = sorted((low * normal[POSITION_AXIS[spec.plane]],
                                       high * normal[POSITION_AXIS[spec.plane]]))
                raise InvalidImageError(
                    f"the {spec.plane} plane at position {spec.position:g} mm misses the volume, which spans "
                    f"{lo_mm:g} .. {hi_mm:g} mm along {'xyz'[POSITION_AXIS[spec.plane]]}",
                    image_id=image_id)
        else:
            index = (count - 1) // 2 if spec.index is None else spec.index
            if index >= count:
                raise InvalidImageError(
                    f"{spec.plane} index {index} misses the volume: it has {count} {spec.plane} planes "
                    f"(index 0..{count - 1})", image_id=image_id)
            distance = low + index * step
        centre_point = geometry.centre()
    else:
        assert spec.normal is not None
        direction = unit(np.asarray(spec.normal, dtype=np.float64))
        if direction is None:
            raise InvalidImageError("bad mpr id: normal= must not be the zero vector", image_id=image_id)
        normal = direction
        column = _up_to_column(image_id, normal, None if spec.up is None else np.asarray(spec.up, float))
        row = cross3(column, normal)
        centre_point = geometry.centre() if spec.point is None else np.asarray(spec.point, dtype=np.float64)
        distance = float(np.dot(centre_point, normal))

    row_spacing, column_spacing = spec.spacing or (geometry.finest_spacing,) * 2
    columns_wanted, rows_wanted = spec.size or (None, None)
    has_size = spec.size is not None
    r_low, r_high = _extent(corners, row)
    c_low, c_high = _extent(corners, column)
    r_start, columns = _samples(r_low, r_high, column_spacing, columns_wanted,
                                float(np.dot(centre_point, row)) if has_size else None)
    c_start, rows = _samples(c_low, c_high, row_spacing, rows_wanted,
                             float(np.dot(centre_point, column)) if has_size else None)
    if rows * columns > config.max_plane_pixels:
        raise ResourceLimitError(
            f"the derived image would be {columns}x{rows} pixels, over loadstone_mpr.config.max_plane_pixels "
            f"= {config.max_plane_pixels}; give a smaller size= or a larger spacing=", image_id=image_id)
    origin = row * r_start + column * c_start + normal * distance
    if spec.slab > 0:
        samples = max(2, math.ceil(spec.slab / geometry.finest_spacing - 1e-9) + 1)
        offsets = np.linspace(-spec.slab / 2.0, spec.slab / 2.0, samples)
    else:
        offsets = np.zeros(1)
    inverse = geometry.inverse
    linear = inverse[:3, :3]
    index_origin = linear @ origin + inverse[:3, 3]
    index_row = linear @ (column * row_spacing)
    index_column = linear @ (row * column_spacing)
    index_slab = linear @ normal
    return PlaneGrid(
        origin=origin, row_cosines=row, column_cosines=column, rows=rows, columns=columns,
        row_spacing=float(row_spacing), column_spacing=float(column_spacing), slab_offsets=offsets,
        slab_thickness=float(spec.slab), mode=spec.mode, interp=spec.interp,
        spacing_between_slices=spacing_between, frame_of_reference_uid=geometry.frame_of_reference_uid,
        index_origin=index_origin[::-1].copy(), index_row=index_row[::-1].copy(),
        index_column=index_column[::-1].copy(), index_slab=index_slab[::-1].copy(),
    )
