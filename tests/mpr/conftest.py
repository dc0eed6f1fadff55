"""Fixtures for the MPR tests: synthetic series in any orientation, and clean global state.

A synthetic series is a numpy volume cut into slices served by a loader on a
scheme of its own, with a metadata provider stating each slice's
``imagePlaneModule`` exactly as a scanner would (position of the first
pixel, orientation, spacing), and registered with
``loadstone_mpr.create_volume`` so that ``mpr:…;volume=<id>`` reaches it.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import loadstone
import loadstone_mpr

from .helpers import AXIAL, affine_of

_numbers = itertools.count()


@dataclass
class SynthSeries:
    """A registered synthetic series."""

    scheme: str
    volume_id: str
    ids: list[str]  # in the order the series lists them
    affine: np.ndarray  # of the slices in k order (before any listing shuffle)
    volume: np.ndarray  # stored values, (slices, rows, columns), in k order
    calls: list[str] = field(default_factory=list)

    def mpr(self, plane: str, **keys: Any) -> str:
        """An ``mpr:`` id of this series' volume."""
        parts = [f"{key}={value}" for key, value in keys.items()]
        return ";".join([f"mpr:{plane}", *parts, f"volume={self.volume_id}"])


class SynthFactory:
    """``synth(volume, ...)`` registers a series; everything is undone at teardown."""

    def __init__(self) -> None:
        self._schemes: list[str] = []
        self._providers: list[Callable[[str, str], Any]] = []
        self._volumes: list[str] = []

    def __call__(
        self,
        volume: np.ndarray,
        *,
        origin: Sequence[float] = (0.0, 0.0, 0.0),
        orientation: tuple[Sequence[float], Sequence[float]] = AXIAL,
        pixel_spacing: tuple[float, float] = (1.0, 1.0),
        slice_spacing: float = 1.0,
        slice_step: Sequence[float] | None = None,
        order: Sequence[int] | None = None,
        slopes: Sequence[float] | None = None,
        intercepts: Sequence[float] | None = None,
        window: tuple[float, float] | None = (40.0, 400.0),
        metadata: str = "always",  # "always" | "after-load" | "never"
        per_slice: Mapping[int, Mapping[str, Any]] | None = None,
        positions: Mapping[int, Sequence[float]] | None = None,
        delay: float = 0.0,
        shapes: Mapping[int, np.ndarray] | None = None,
    ) -> SynthSeries:
        number = next(_numbers)
        scheme = f"synth{number}x{uuid.uuid4().hex[:6]}"
        row_cosines, column_cosines = (np.asarray(v, float) for v in orientation)
        normal = np.cross(row_cosines, column_cosines)
        step = normal * slice_spacing if slice_step is None else np.asarray(slice_step, float)
        affine = affine_of(origin, row_cosines, column_cosines, pixel_spacing, step)
        slices = volume.shape[0]
        listing = list(range(slices)) if order is None else list(order)
        ids = [f"{scheme}://s/{k}" for k in listing]
        series = SynthSeries(scheme, f"vol-{scheme}", ids, affine, volume)
        loaded: set[str] = set()
        lock = threading.Lock()

        def index_of(image_id: str) -> int | None:
            if not image_id.startswith(f"{scheme}://s/"):
                return None
            return int(image_id.rsplit("/", 1)[1])

        def load(image_id: str, options: Mapping[str, Any]) -> loadstone.Image:
            k = index_of(image_id)
            if k is None or not 0 <= k < slices:
                raise loadstone.InvalidImageError("no such synthetic slice", image_id=image_id)
            with lock:
                series.calls.append(image_id)
            if delay:
                context = loadstone.current_load()
                if context is not None and context.wait(delay):
                    context.check()
            pixels = volume[k] if shapes is None or k not in shapes else shapes[k]
            fields: dict[str, Any] = {
                "slope": 1.0 if slopes is None else float(slopes[k]),
                "intercept": 0.0 if intercepts is None else float(intercepts[k]),
                "row_pixel_spacing": pixel_spacing[0],
                "column_pixel_spacing": pixel_spacing[1],
            }
            if window is not None:
                fields.update(window_center=window[0], window_width=window[1])
            image = loadstone.Image.from_array(image_id, np.array(pixels), **fields)
            with lock:
                loaded.add(image_id)
            return image

        def provider(module: str, image_id: str) -> Any:
            k = index_of(image_id)
            if k is None:
                return None
            if metadata == "never" or (metadata == "after-load" and image_id not in loaded):
                return None
            if module == "imagePlaneModule":
                position = (affine @ np.array([0.0, 0.0, k, 1.0]))[:3]
                if positions and k in positions:
                    position = np.asarray(positions[k], float)
                rows, columns = (shapes[k].shape if shapes and k in shapes else volume.shape[1:3])
                answer = {
                    "frame_of_reference_uid": f"1.2.3.{number}",
                    "rows": int(rows),
                    "columns": int(columns),
                    "image_orientation_patient": [*row_cosines, *column_cosines],
                    "row_cosines": list(row_cosines),
                    "column_cosines": list(column_cosines),
                    "image_position_patient": [float(v) for v in position],
                    "pixel_spacing": list(pixel_spacing),
                    "row_pixel_spacing": pixel_spacing[0],
                    "column_pixel_spacing": pixel_spacing[1],
                }
                if per_slice and k in per_slice:
                    answer.update(per_slice[k])
                return answer
            if module == "modalityLutModule":
                return {"rescale_slope": 1.0 if slopes is None else float(slopes[k]),
                        "rescale_intercept": 0.0 if intercepts is None else float(intercepts[k]),
                        "rescale_type": "US"}
            if module == "imagePixelModule":
                dtype = volume.dtype
                return {"rows": volume.shape[1], "columns": volume.shape[2],
                        "bits_allocated": dtype.itemsize * 8, "samples_per_pixel": 1,
                        "pixel_representation": int(dtype.kind == "i"),
                        "photometric_interpretation": "MONOCHROME2"}
            if module == "voiLutModule" and window is not None:
                return {"window_center": [window[0]], "window_width": [window[1]]}
            if module == "generalSeriesModule":
                return {"modality": "CT", "series_instance_uid": f"1.2.3.{number}.1",
                        "series_description": "synthetic"}
            return None

        loadstone.register_image_loader(scheme, loadstone.image_loader(load))
        loadstone.metadata.add_provider(provider)
        loadstone_mpr.create_volume(series.volume_id, ids)
        self._schemes.append(scheme)
        self._providers.append(provider)
        self._volumes.append(series.volume_id)
        return series

    def close(self) -> None:
        for scheme in self._schemes:
            loadstone.unregister_image_loader(scheme)
        for provider in self._providers:
            loadstone.metadata.remove_provider(provider)
        for volume_id in self._volumes:
            loadstone_mpr.remove_volume(volume_id)


@pytest.fixture
def synth() -> Iterator[SynthFactory]:
    """Register synthetic series: ``synth(volume, origin=..., orientation=..., ...)``."""
    factory = SynthFactory()
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(autouse=True)
def _mpr_state() -> Iterator[None]:
    """Every test starts and ends with no volumes, default settings and an empty cache."""
    saved = {name: getattr(loadstone_mpr.config, name) for name in (
        "max_volume_bytes", "max_plane_pixels", "spacing_tolerance", "orientation_tolerance",
        "slice_priority", "engine", "threads")}
    loadstone_mpr.clear()
    yield
    loadstone_mpr.clear()
    loadstone.cache.purge()
    for name, value in saved.items():
        setattr(loadstone_mpr.config, name, value)


@pytest.fixture(params=["numba", "numpy"])
def engine(request: pytest.FixtureRequest) -> str:
    """Run a test with each reslice engine."""
    if request.param == "numba":
        pytest.importorskip("numba")
    loadstone_mpr.config.engine = request.param
    return str(request.param)
