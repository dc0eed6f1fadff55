"""Helpers for the MPR tests: geometry written independently of the plugin's own code, and scheme checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import loadstone

AXIAL = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
SAGITTAL = ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0))
CORONAL = ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0))


def affine_of(origin: Sequence[float], row_cosines: Sequence[float], column_cosines: Sequence[float],
              pixel_spacing: tuple[float, float], slice_step: Sequence[float]) -> np.ndarray:
    """Voxel (i, j, k, 1) -> LPS, built independently of the plugin for the tests to check it."""
    affine = np.eye(4)
    affine[:3, 0] = np.asarray(row_cosines, float) * pixel_spacing[1]
    affine[:3, 1] = np.asarray(column_cosines, float) * pixel_spacing[0]
    affine[:3, 2] = np.asarray(slice_step, float)
    affine[:3, 3] = np.asarray(origin, float)
    return affine


def voxel_positions(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """LPS of every voxel centre, shape (slices, rows, columns, 3)."""
    k, j, i = np.meshgrid(*(np.arange(n, dtype=float) for n in shape), indexing="ij")
    index = np.stack([i, j, k, np.ones_like(i)], axis=-1)
    return np.asarray(index @ affine.T)[..., :3]


def plane_positions(module: Mapping[str, Any]) -> np.ndarray:
    """LPS of every pixel centre of a derived image, from its imagePlaneModule alone."""
    rows, columns = module["rows"], module["columns"]
    origin = np.asarray(module["image_position_patient"], float)
    row_cosines = np.asarray(module["row_cosines"], float)
    column_cosines = np.asarray(module["column_cosines"], float)
    row_spacing, column_spacing = module["pixel_spacing"]
    r = np.arange(rows, dtype=float)[:, None, None]
    c = np.arange(columns, dtype=float)[None, :, None]
    return np.asarray(origin + c * column_spacing * row_cosines + r * row_spacing * column_cosines)


def index_of_positions(affine: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Fractional (i, j, k) voxel index of LPS positions (..., 3)."""
    inverse = np.linalg.inv(affine)
    return np.asarray(positions @ inverse[:3, :3].T + inverse[:3, 3])


def has_scheme(scheme: str) -> bool:
    """True when an installed plugin (or a registration) serves ``scheme`` (imports no plugin)."""
    return scheme in loadstone.schemes()
