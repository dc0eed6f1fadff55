"""Patient-space geometry: where a volume's voxels are, and where a plane's pixels are.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from loadstone import InvalidImageError, ResourceLimitError

from ._config import config
from ._grammar import MprSpec

__all__ = [
    "AXIS_ORIENTATIONS",
    "SlicePlane",
    "VolumeGeometry",
    "PlaneGrid",
    "slice_plane",
    "volume_geometry",
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
_EPS = 1e-6
_NAMES_SHOWN = 5


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (numpy's ``cross`` costs ten times more on tiny inputs)."""
    a0, a1, a2 = float(a[0]), float(a[1]), float(a[2])
    b0, b1, b2 = float(b[0]), float(b[1]), float(b[2])
    return np.array([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0])


def _clean(value: float) -> float:
    return float(value) + 0.0  # -0.0 -> 0.0, so answers print and compare cleanly


def _clean_list(values: Any) -> list[float]:
    return [_clean(v) for v in values]


def _names(ids: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:_NAMES_SHOWN])
    more = len(ids) - _NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


Triple = tuple[float, float, float]


class SlicePlane(NamedTuple):
    """The Image Plane facts of one source slice that a volume needs (plain floats: it is made per slice)."""

    image_id: str
    position: Triple  # ImagePositionPatient: centre of the first pixel
    row_cosines: Triple  # direction of increasing column index (unit)
    column_cosines: Triple  # direction of increasing row index (unit)
    pixel_spacing: tuple[float, float]  # (between rows, between columns)
    rows: int | None
    columns: int | None
    frame_of_reference_uid: str | None


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(math.isfinite(v) for v in numbers):
        return None
    return numbers


def _unit3(vector: Sequence[float]) -> Triple | None:
    x, y, z = vector
    norm = math.sqrt(x * x + y * y + z * z)
    return None if norm < _EPS else (x / norm, y / norm, z / norm)


def _unit(vector: np.ndarray) -> np.ndarray | None:
    norm = float(np.linalg.norm(vector))
    return None if norm < _EPS else vector / norm


def slice_plane(image_id: str, module: Mapping[str, Any] | None,
                fallback_spacing: tuple[float | None, float | None] = (None, None)) -> SlicePlane | None:
    """Read an ``imagePlaneModule`` answer; None when it lacks position, orientation or spacing.

    ``fallback_spacing`` (an Image's row and column spacing) stands in for a
    missing ``pixel_spacing``.
    """
    if not isinstance(module, Mapping):
        return None
    position = _floats(module.get("image_position_patient") or (), 3)
    orientation = _floats(module.get("image_orientation_patient") or (), 6)
    if orientation is None:
        rows_c = module.get("row_cosines")
        cols_c = module.get("column_cosines")
        if rows_c is not None and cols_c is not None:
            orientation = _floats([*rows_c, *cols_c], 6)
    spacing = _floats(module.get("pixel_spacing") or (), 2)
    if spacing is None:
        spacing = _floats([module.get("row_pixel_spacing") or fallback_spacing[0],
                           module.get("column_pixel_spacing") or fallback_spacing[1]], 2)
    if position is None or orientation is None or spacing is None or min(spacing) <= 0:
        return None
    row_cosines = _unit3(orientation[:3])
    column_cosines = _unit3(orientation[3:])
    if row_cosines is None or column_cosines is None:
        return None

    def _int(key: str) -> int | None:
        value = module.get(key)
        return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else None

    frame = module.get("frame_of_reference_uid")
    return SlicePlane(image_id, (position[0], position[1], position[2]), row_cosines, column_cosines,
                      (spacing[0], spacing[1]), _int("rows"), _int("columns"),
                      str(frame) if frame else None)


@dataclass(frozen=True, eq=False)
class VolumeGeometry:
    """Shape and placement of a volume, known from metadata alone.

    ``affine @ (i, j, k, 1)`` is the LPS position of ``array[k, j, i]``;
    ``image_ids`` are the source slices in array order (along the normal).
    """

    shape: tuple[int, int, int]  # (slices, rows, columns)
    affine: np.ndarray
    image_ids: tuple[str, ...]
    frame_of_reference_uid: str | None

    @cached_property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along (columns, rows, slices): the affine's column lengths."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return (float(norms[0]), float(norms[1]), float(norms[2]))

    @property
    def finest_spacing(self) -> float:
        """The smallest voxel size: the default spacing of derived images."""
        return min(self.spacing)

    @cached_property
    def axes(self) -> np.ndarray:
        """Unit directions of increasing i, j and k, as the columns of a 3x3 matrix."""
        return np.asarray(self.affine[:3, :3] / np.linalg.norm(self.affine[:3, :3], axis=0))

    @cached_property
    def inverse(self) -> np.ndarray:
        """The inverse affine: LPS mm to fractional voxel index (i, j, k)."""
        return np.linalg.inv(self.affine)

    @cached_property
    def _corners(self) -> np.ndarray:
        nk, nj, ni = self.shape
        idx = np.array([[i, j, k, 1.0] for k in (0, nk - 1) for j in (0, nj - 1) for i in (0, ni - 1)])
        corners = np.asarray((self.affine @ idx.T).T[:, :3])
        corners.setflags(write=False)
        return corners

    def corners(self) -> np.ndarray:
        """LPS centres of the eight corner voxels, shape (8, 3)."""
        return self._corners

    @cached_property
    def _centre(self) -> np.ndarray:
        nk, nj, ni = self.shape
        centre = np.asarray(self.affine @ np.array([(ni - 1) / 2, (nj - 1) / 2, (nk - 1) / 2, 1.0]))[:3]
        centre.setflags(write=False)
        return centre

    def centre(self) -> np.ndarray:
        """LPS centre of the volume."""
        return self._centre

    def nbytes(self, itemsize: int) -> int:
        """Bytes of the voxel array at ``itemsize`` bytes per voxel."""
        nk, nj, ni = self.shape
        return nk * nj * ni * int(itemsize)


def _cluster(values: Sequence[np.ndarray], tolerance: float) -> list[list[int]]:
    """Indices grouped by equality within ``tolerance`` (max abs difference), largest group first."""
    groups: list[tuple[np.ndarray, list[int]]] = []
    for index, value in enumerate(values):
        for reference, members in groups:
            if value.shape == reference.shape and float(np.max(np.abs(value - reference))) <= tolerance:
                members.append(index)
                break
        else:
            groups.append((value, [index]))
    return sorted((members for _, members in groups), key=len, reverse=True)


def _check_uniform(planes: Sequence[SlicePlane], values: np.ndarray, tolerance: float,
                   what: str, show: Any, source: str) -> None:
    """All rows of ``values`` (one per slice) equal within ``tolerance``, else name the odd slices."""
    if float(np.max(np.abs(values - values[0]))) <= tolerance:  # the usual case, vectorised
        return
    groups = _cluster(list(values), tolerance)
    majority = groups[0]
    odd = [i for group in groups[1:] for i in group]
    raise InvalidImageError(
        f"{what} differs between the slices of {source}: {len(odd)} slice(s) "
        f"({_names([planes[i].image_id for i in odd])}) have {what} {show(odd[0])}, "
        f"the other {len(majority)} have {show(majority[0])}; MPR needs one {what} for all slices",
        image_id=planes[odd[0]].image_id,
    )


def volume_geometry(planes: Sequence[SlicePlane], rows: int | None = None, columns: int | None = None,
                    source: str = "the series") -> VolumeGeometry:
    """Order the slices along their normal, check they form a regular grid, and place it.

    Raises :class:`~loadstone.InvalidImageError` naming the offending slices
    for fewer than two slices, mixed orientations, sizes or pixel spacings,
    two slices at one position, or uneven spacing (a missing slice).
    """
    if len(planes) < 2:
        which = f" ({planes[0].image_id!r})" if planes else ""
        raise InvalidImageError(
            f"{source} has {len(planes)} slice(s){which}; a volume needs at least two",
            image_id=planes[0].image_id if planes else None,
        )
    orientations = np.array([p.row_cosines + p.column_cosines for p in planes])
    _check_uniform(planes, orientations, config.orientation_tolerance, "orientation",
                   lambda i: _clean_list(np.round(orientations[i], 6)), source)
    sizes = np.array([(p.rows if p.rows is not None else (rows or -1),
                       p.columns if p.columns is not None else (columns or -1)) for p in planes],
                     dtype=np.float64)
    _check_uniform(planes, sizes, 0.0, "size (rows x columns)",
                   lambda i: f"{int(sizes[i][0])}x{int(sizes[i][1])}", source)
    spacings = np.array([p.pixel_spacing for p in planes])
    _check_uniform(planes, spacings, 1e-3 * float(np.max(spacings[0])), "pixel spacing",
                   lambda i: list(planes[i].pixel_spacing), source)
    frames = {p.frame_of_reference_uid for p in planes if p.frame_of_reference_uid}
    if len(frames) > 1:
        raise InvalidImageError(f"the slices of {source} lie in {len(frames)} frames of reference; "
                                "MPR needs one", image_id=planes[0].image_id)

    first = planes[0]
    row_cosines, column_cosines = np.array(first.row_cosines), np.array(first.column_cosines)
    normal = _cross(row_cosines, column_cosines)
    normal /= np.linalg.norm(normal)
    all_positions = np.array([p.position for p in planes])
    distance = all_positions @ normal
    order = np.argsort(distance, kind="stable")
    ordered = [planes[i] for i in order]
    positions = all_positions[order]
    gaps = np.diff(positions, axis=0)
    gap_lengths = np.diff(distance[order])
    for n, gap in enumerate(gap_lengths):
        if gap < 1e-3:
            raise InvalidImageError(
                f"slices {ordered[n].image_id!r} and {ordered[n + 1].image_id!r} of {source} lie at the "
                f"same position along the slice normal ({_clean(distance[order][n]):.3f} mm)",
                image_id=ordered[n + 1].image_id,
            )
    typical = gaps[int(np.argsort(gap_lengths)[len(gap_lengths) // 2])]
    tolerance = max(config.spacing_tolerance * float(np.linalg.norm(typical)), 1e-3)
    deviation = np.linalg.norm(gaps - typical, axis=1)
    bad = np.flatnonzero(deviation > tolerance)
    if bad.size:
        n = int(bad[0])
        pairs = ", ".join(f"{ordered[b].image_id!r} -> {ordered[b + 1].image_id!r} "
                          f"{float(np.linalg.norm(gaps[b])):.3f} mm" for b in bad[:_NAMES_SHOWN])
        more = f" and {bad.size - _NAMES_SHOWN} more" if bad.size > _NAMES_SHOWN else ""
        missing = " (a missing slice?)" if np.any(gap_lengths[bad] > 1.5 * np.dot(typical, normal)) else ""
        raise InvalidImageError(
            f"uneven slice spacing in {source}: the slices step {float(np.linalg.norm(typical)):.3f} mm, "
            f"but {pairs}{more}{missing}; MPR needs evenly spaced slices "
            f"(tolerance {config.spacing_tolerance:g} of the spacing)",
            image_id=ordered[n + 1].image_id,
        )
    step = (positions[-1] - positions[0]) / (len(ordered) - 1)
    row_spacing, column_spacing = first.pixel_spacing
    affine = np.eye(4)
    affine[:3, 0] = row_cosines * column_spacing
    affine[:3, 1] = column_cosines * row_spacing
    affine[:3, 2] = step
    affine[:3, 3] = positions[0]
    shape = (len(ordered), int(sizes[0][0]), int(sizes[0][1]))
    if shape[1] < 1 or shape[2] < 1:
        raise InvalidImageError(f"the slices of {source} do not say their rows and columns",
                                image_id=first.image_id)
    affine.setflags(write=False)
    return VolumeGeometry(shape, affine, tuple(p.image_id for p in ordered), next(iter(frames), None))


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
        return _cross(self.row_cosines, self.column_cosines)

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
            "image_orientation_patient": _clean_list([*self.row_cosines, *self.column_cosines]),
            "row_cosines": _clean_list(self.row_cosines),
            "column_cosines": _clean_list(self.column_cosines),
            "image_position_patient": _clean_list(self.origin),
            "pixel_spacing": [self.row_spacing, self.column_spacing],
            "row_pixel_spacing": self.row_spacing,
            "column_pixel_spacing": self.column_spacing,
            "slice_thickness": thickness,
            "spacing_between_slices": self.spacing_between_slices,
            "slice_location": _clean(round(float(np.dot(self.origin, self.normal)), 6)),
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
    normal = _cross(row, column)
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
        normal = _cross(row, column)
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
        unit = _unit(np.asarray(spec.normal, dtype=np.float64))
        if unit is None:
            raise InvalidImageError("bad mpr id: normal= must not be the zero vector", image_id=image_id)
        normal = unit
        column = _up_to_column(image_id, normal, None if spec.up is None else np.asarray(spec.up, float))
        row = _cross(column, normal)
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
