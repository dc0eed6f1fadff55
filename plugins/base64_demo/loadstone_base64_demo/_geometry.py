"""Image plane geometry of a stack of parallel, equally spaced slices.

Everything is in the DICOM patient coordinate system (LPS: x to the
patient's left, y to posterior, z to head), in millimetres.  The generator
samples its phantoms at exactly these voxel positions, so the pixels and the
metadata cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loadstone.toolkit import distance_along, slice_normal

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Geometry", "Vector"]

Vector = tuple[float, float, float]


def _clean(value: float) -> float:
    # Adding 0.0 turns -0.0 into 0.0, so answers print and compare cleanly.
    return float(value) + 0.0


@dataclass(frozen=True)
class Geometry:
    """Where the slices of one series lie.

    ``row_cosines`` is the direction of increasing column index (along a
    row), ``column_cosines`` that of increasing row index, as in DICOM's
    Image Orientation (Patient).  Slice ``n`` lies at
    ``first_position + n * spacing_between_slices * normal``.
    """

    frame_of_reference: str  # a name; the UID is derived from it
    first_position: Vector
    row_cosines: Vector
    column_cosines: Vector
    pixel_spacing: tuple[float, float]  # (between rows, between columns), as DICOM orders it
    slice_thickness: float
    spacing_between_slices: float

    @property
    def normal(self) -> Vector:
        """Unit slice normal, ``row_cosines x column_cosines``; slice index grows along it."""
        n = slice_normal(self.orientation)
        assert n is not None, "the catalogue's orientations are orthonormal"
        return (_clean(n[0]), _clean(n[1]), _clean(n[2]))

    @property
    def orientation(self) -> list[float]:
        """Image Orientation (Patient): row cosines then column cosines."""
        return [_clean(v) for v in (*self.row_cosines, *self.column_cosines)]

    def position(self, index: int) -> list[float]:
        """Image Position (Patient) of slice ``index``: centre of its first pixel."""
        step = index * self.spacing_between_slices
        return [_clean(round(p + step * n, 6)) for p, n in zip(self.first_position, self.normal, strict=True)]

    def slice_location(self, index: int) -> float:
        """Signed distance of slice ``index`` along the normal from the origin (DICOM Slice Location)."""
        distance = distance_along(self.normal, self.position(index))
        assert distance is not None
        return _clean(round(distance, 6))

    def voxel_positions(self, slices: int, rows: int, columns: int) -> np.ndarray:
        """Patient coordinates of every voxel centre, shape ``(slices, rows, columns, 3)``.

        The data generator samples its phantoms here, so the pixels are
        exactly where :meth:`position` says they are.
        """
        import numpy as np  # only the generator needs it

        k = np.arange(slices, dtype=np.float64)[:, None, None, None]
        r = np.arange(rows, dtype=np.float64)[None, :, None, None]
        c = np.arange(columns, dtype=np.float64)[None, None, :, None]
        origin = np.asarray(self.first_position, dtype=np.float64)
        along_row = np.asarray(self.row_cosines, dtype=np.float64) * self.pixel_spacing[1]
        along_column = np.asarray(self.column_cosines, dtype=np.float64) * self.pixel_spacing[0]
        along_normal = np.asarray(self.normal, dtype=np.float64) * self.spacing_between_slices
        return origin + k * along_normal + r * along_column + c * along_row
