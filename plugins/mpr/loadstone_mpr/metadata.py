"""Metadata for ``mpr:`` ids, computed from the id and the source's metadata, without pixels.

``imagePlaneModule`` places the derived image in patient space (position of
the top-left pixel centre, orientation, spacing), so a point measured on it
maps back to LPS: ``position + column * column_spacing * row_cosines + row *
row_spacing * column_cosines``.  Study, patient and VOI answers are the
source's; series, image and SOP answers say the image is derived.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

import loadstone
from loadstone import LoadstoneError
from loadstone.geometry import VolumeGeometry

from ._geometry import PlaneGrid, plane_grid
from ._grammar import MprSpec, is_mpr_id, parse_mpr_id
from ._reslice import exact_slices, output_dtype
from ._volume import Volume, cached_volume, source_info

__all__ = ["metadata_provider", "derived_uid"]


def derived_uid(text: str) -> str:
    """A stable UID for a derived object (DICOM 2.25 form, from a UUID of ``text``)."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'loadstone-mpr:' + text).int}"


class _Plane:
    """Everything the answers need, gathered once per call."""

    def __init__(self, image_id: str, spec: MprSpec) -> None:
        self.image_id = image_id
        self.spec = spec
        self.volume: Volume | None = cached_volume(spec.source)
        self.first_source_id: str | None = None
        self.rescale_uniform: bool | None = None
        self.itemsize = 2
        geometry: VolumeGeometry | None
        if self.volume is not None:
            geometry = self.volume.geometry
            self.first_source_id = geometry.image_ids[0]
        else:
            info = source_info(spec.source)
            geometry = info.geometry
            ids = geometry.image_ids if geometry is not None else info.image_ids
            self.first_source_id = ids[0] if ids else None
            self.rescale_uniform = info.rescale_uniform
            self.itemsize = info.itemsize_hint
        self.geometry = geometry
        self._grid: PlaneGrid | None = None

    @property
    def grid(self) -> PlaneGrid | None:
        if self._grid is None and self.geometry is not None:
            self._grid = plane_grid(self.spec, self.geometry, self.image_id)
        return self._grid

    def source(self, module: str) -> Any:
        """A copy of the source's first slice's answer (None if it has none)."""
        if self.first_source_id is None:
            return None
        answer = loadstone.metadata.get(module, self.first_source_id)
        return copy.deepcopy(answer) if isinstance(answer, dict) else None

    def dtype(self) -> np.dtype[Any] | None:
        grid, geometry = self.grid, self.geometry
        if grid is None or geometry is None:
            return None
        if self.volume is not None:
            volume_dtype = self.volume.array.dtype
        elif self.rescale_uniform is False:
            volume_dtype = np.dtype(np.float32)
        else:
            pixel = self.source("imagePixelModule") or {}
            signed = pixel.get("pixel_representation") == 1
            volume_dtype = np.dtype(f"{'i' if signed else 'u'}{min(8, max(1, self.itemsize))}")
        return output_dtype(volume_dtype, grid, exact_slices(grid, geometry) is not None)


def _image_plane(plane: _Plane) -> Any:
    grid = plane.grid
    return None if grid is None else grid.image_plane_module()


def _image_pixel(plane: _Plane) -> Any:
    grid, dtype = plane.grid, plane.dtype()
    if grid is None or dtype is None:
        return None
    bits = dtype.itemsize * 8
    photometric = plane.volume.photometric_interpretation if plane.volume else (
        (plane.source("imagePixelModule") or {}).get("photometric_interpretation") or "MONOCHROME2")
    return {
        "samples_per_pixel": 1,
        "photometric_interpretation": photometric,
        "rows": grid.rows,
        "columns": grid.columns,
        "bits_allocated": bits,
        "bits_stored": bits,
        "high_bit": bits - 1,
        "pixel_representation": None if dtype.kind == "f" else int(dtype.kind == "i"),
        "planar_configuration": None,
        "pixel_padding_value": None,
        "dtype": dtype.str,
    }


def _general_series(plane: _Plane) -> Any:
    answer = plane.source("generalSeriesModule") or {}
    described = answer.get("series_description") or plane.spec.source.id
    answer.update({
        "series_instance_uid": derived_uid(f"series/{plane.spec.source.key}/{plane.spec.plane}"),
        "series_description": f"MPR {plane.spec.plane} of {described}",
        "series_number": None,
    })
    return answer


def _general_image(plane: _Plane) -> Any:
    return {
        "instance_number": (plane.spec.index or 0) + 1,
        "sop_instance_uid": derived_uid(plane.image_id),
        "image_type": ["DERIVED", "SECONDARY", "MPR"],
        "derivation_description": f"{plane.spec.plane} reformat of {plane.spec.source.id}",
        "lossy_image_compression": "00",
    }


def _sop_common(plane: _Plane) -> Any:
    answer = plane.source("sopCommonModule") or {}
    answer["sop_instance_uid"] = derived_uid(plane.image_id)
    return answer


def _voi_lut(plane: _Plane) -> Any:
    answer = plane.source("voiLutModule")
    if answer is None and plane.volume is not None and plane.volume.window_center is not None:
        answer = {"window_center": [plane.volume.window_center],
                  "window_width": [plane.volume.window_width],
                  "voi_lut_function": plane.volume.voi_lut_function}
    return answer


def _modality_lut(plane: _Plane) -> Any:
    answer = plane.source("modalityLutModule") or {}
    if plane.volume is not None:
        answer.update(rescale_slope=plane.volume.slope, rescale_intercept=plane.volume.intercept)
    elif plane.rescale_uniform is False:
        answer.update(rescale_slope=1.0, rescale_intercept=0.0)
    elif not answer:
        return None
    return answer


def _passthrough(module: str) -> Callable[[_Plane], Any]:
    return lambda plane: plane.source(module)


def _multiframe(plane: _Plane) -> Any:
    return {"number_of_frames": 1}


_MODULES: dict[str, Callable[[_Plane], Any]] = {
    "imagePlaneModule": _image_plane,
    "imagePixelModule": _image_pixel,
    "generalSeriesModule": _general_series,
    "generalStudyModule": _passthrough("generalStudyModule"),
    "patientModule": _passthrough("patientModule"),
    "generalImageModule": _general_image,
    "sopCommonModule": _sop_common,
    "voiLutModule": _voi_lut,
    "modalityLutModule": _modality_lut,
    "multiframeModule": _multiframe,
}


def metadata_provider(module: str, image_id: str) -> Any:
    """Answer ``module`` for an ``mpr:`` id; None for other ids, bad ids or unknown geometry.

    Never raises: the registry asks every provider in turn.
    """
    build = _MODULES.get(module) if isinstance(module, str) else None
    if build is None or not is_mpr_id(image_id):
        return None
    try:
        return build(_Plane(image_id, parse_mpr_id(image_id)))
    except LoadstoneError:
        return None
