"""Patient-space geometry of a series: slices ordered, checked and placed as one volume.

Everything is in DICOM patient coordinates (LPS: x to the patient's left, y
posterior, z head), in millimetres.  A volume is a ``(slices, rows, columns)``
array plus an affine taking voxel index ``(i=column, j=row, k=slice, 1)`` to
LPS.  The geometry comes from metadata alone (each slice's
``imagePlaneModule``), so it is known before any pixel loads.  The mpr plugin,
``loadstone.load_volume`` and the dask plugin all place volumes with this one
module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from .errors import InvalidImageError

__all__ = [
    "SlicePlane",
    "VolumeGeometry",
    "slice_plane",
    "volume_geometry",
    "ORIENTATION_TOLERANCE",
    "SPACING_TOLERANCE",
    "ORTHONORMAL_TOLERANCE",
    "check_orientation",
    "cross3",
    "unit",
    "clean",
    "clean_list",
    "names_shown",
]

#: Allowed difference of direction cosines between slices of one volume.
ORIENTATION_TOLERANCE = 1e-3
#: Allowed deviation of each gap between neighbouring slices from the typical gap (a fraction).
SPACING_TOLERANCE = 0.02
#: How far a slice's row and column cosines may be from unit length and from perpendicular.
ORTHONORMAL_TOLERANCE = 1e-3
_EPS = 1e-6
_NAMES_SHOWN = 5


def cross3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (numpy's ``cross`` costs ten times more on tiny inputs)."""
    a0, a1, a2 = float(a[0]), float(a[1]), float(a[2])
    b0, b1, b2 = float(b[0]), float(b[1]), float(b[2])
    return np.array([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0])


def clean(value: float) -> float:
    """A plain float with -0.0 made 0.0, so answers print and compare cleanly."""
    return float(value) + 0.0


def clean_list(values: Any) -> list[float]:
    """:func:`clean` of each value."""
    return [clean(v) for v in values]


def names_shown(ids: Sequence[str]) -> str:
    """The first few ids, quoted, and how many more (for messages)."""
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


def unit(vector: np.ndarray) -> np.ndarray | None:
    """``vector`` scaled to length 1, or None for a (near) zero vector."""
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
    check_orientation(image_id, orientation)
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


def check_orientation(image_id: str, orientation: Sequence[float],
                      tolerance: float = ORTHONORMAL_TOLERANCE) -> None:
    """Raise :class:`InvalidImageError` unless the six cosines are two orthonormal directions.

    Reslicing along cosines that are not unit length or not perpendicular
    would silently shear the volume; parallel ones define no plane at all.
    """
    row = np.asarray(orientation[:3], dtype=np.float64)
    column = np.asarray(orientation[3:6], dtype=np.float64)
    row_norm, column_norm = float(np.linalg.norm(row)), float(np.linalg.norm(column))
    if row_norm < _EPS or column_norm < _EPS:
        raise InvalidImageError(
            f"slice {image_id!r} has a zero direction in its Image Orientation (Patient) "
            f"{clean_list(orientation)}", image_id=image_id)
    sine = float(np.linalg.norm(cross3(row / row_norm, column / column_norm)))
    if sine < 1e-3:
        raise InvalidImageError(
            f"slice {image_id!r} has parallel row and column directions in its Image Orientation "
            f"(Patient) {clean_list(orientation)}: they define no plane", image_id=image_id)
    dot = float(np.dot(row, column))
    if abs(row_norm - 1.0) > tolerance or abs(column_norm - 1.0) > tolerance or abs(dot) > tolerance:
        raise InvalidImageError(
            f"slice {image_id!r} has an Image Orientation (Patient) {clean_list(orientation)} whose "
            f"directions are not orthonormal (lengths {row_norm:.4f} and {column_norm:.4f}, dot product "
            f"{dot:.4f}; tolerance {tolerance:g}): reslicing it would shear the image", image_id=image_id)


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
        f"({names_shown([planes[i].image_id for i in odd])}) have {what} {show(odd[0])}, "
        f"the other {len(majority)} have {show(majority[0])}; a volume needs one {what} for all slices",
        image_id=planes[odd[0]].image_id,
    )


def volume_geometry(planes: Sequence[SlicePlane], rows: int | None = None, columns: int | None = None,
                    source: str = "the series", *, orientation_tolerance: float = ORIENTATION_TOLERANCE,
                    spacing_tolerance: float = SPACING_TOLERANCE) -> VolumeGeometry:
    """Order the slices along their normal, check they form a regular grid, and place it.

    Raises :class:`~loadstone.InvalidImageError` naming the offending slices
    for fewer than two slices, mixed orientations, sizes or pixel spacings,
    two slices at one position, or uneven spacing (a missing slice).
    ``orientation_tolerance`` bounds the difference of direction cosines
    between slices; ``spacing_tolerance`` each gap's deviation from the
    typical gap, as a fraction of it.
    """
    if len(planes) < 2:
        which = f" ({planes[0].image_id!r})" if planes else ""
        raise InvalidImageError(
            f"{source} has {len(planes)} slice(s){which}; a volume needs at least two",
            image_id=planes[0].image_id if planes else None,
        )
    orientations = np.array([p.row_cosines + p.column_cosines for p in planes])
    _check_uniform(planes, orientations, orientation_tolerance, "orientation",
                   lambda i: clean_list(np.round(orientations[i], 6)), source)
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
                                "a volume needs one", image_id=planes[0].image_id)

    first = planes[0]
    row_cosines, column_cosines = np.array(first.row_cosines), np.array(first.column_cosines)
    normal = cross3(row_cosines, column_cosines)
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
                f"same position along the slice normal ({clean(distance[order][n]):.3f} mm)",
                image_id=ordered[n + 1].image_id,
            )
    typical = gaps[int(np.argsort(gap_lengths)[len(gap_lengths) // 2])]
    tolerance = max(spacing_tolerance * float(np.linalg.norm(typical)), 1e-3)
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
            f"but {pairs}{more}{missing}; a volume needs evenly spaced slices "
            f"(tolerance {spacing_tolerance:g} of the spacing)",
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
