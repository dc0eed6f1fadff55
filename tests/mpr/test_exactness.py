"""Exactness of the reslice engine, with each engine (numba and numpy).

The reference values never come from the plugin's own geometry code: each
pixel's patient position is computed from the derived image's
``imagePlaneModule`` answer, and mapped into the volume with an affine the
test builds itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import loadstone
from loadstone_mpr import _reslice

from .conftest import SynthFactory
from .helpers import AXIAL, index_of_positions, plane_positions, voxel_positions

LINEAR_A = np.array([0.5, -1.25, 2.0])
LINEAR_B = 7.0


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 2] = -q[:, 2]
    return q


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


def _fmt(values: Any) -> str:
    return ",".join(f"{float(v):.9g}" for v in values)


def _load(image_id: str) -> tuple[loadstone.Image, dict[str, Any]]:
    image = loadstone.load_image(image_id).result(60)
    module = loadstone.metadata.get("imagePlaneModule", image_id)
    assert module is not None
    assert module == image.extra["image_plane_module"]
    assert (module["rows"], module["columns"]) == image.pixel_data.shape
    assert module["pixel_spacing"] == [image.row_pixel_spacing, image.column_pixel_spacing]
    return image, module


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_function_is_reproduced_on_random_oblique_planes(
        synth: SynthFactory, engine: str, dtype: Any) -> None:
    rng = np.random.default_rng(1234)
    rotation = _rotation(rng)
    shape = (18, 22, 26)
    series = synth(np.zeros(shape, dtype=dtype), origin=(-12.0, 4.0, 30.0),
                   orientation=(rotation[:, 0], rotation[:, 1]), pixel_spacing=(0.8, 1.1),
                   slice_spacing=1.7)
    positions = voxel_positions(series.affine, shape)
    series.volume[...] = positions @ LINEAR_A + LINEAR_B
    checked = 0
    for _ in range(12):
        normal, up = _unit(rng), _unit(rng)
        point = series.affine @ np.array([*(rng.uniform(0.2, 0.8, 3) * (np.array(shape[::-1]) - 1)), 1.0])
        spacing = rng.uniform(0.4, 1.5)
        image_id = series.mpr("oblique", normal=_fmt(normal), up=_fmt(up), point=_fmt(point[:3]),
                              size="40x36", spacing=f"{spacing:.6g}")
        image, module = _load(image_id)
        where = plane_positions(module)
        index = index_of_positions(series.affine, where)
        inside = np.all((index >= -1e-9) & (index <= np.array(shape[::-1]) - 1 + 1e-9), axis=-1)
        assert inside.sum() > 0
        expected = where @ LINEAR_A + LINEAR_B
        error = np.abs(image.pixel_data.astype(np.float64) - expected)[inside]
        assert error.max() < 1e-4, f"{image_id}: max error {error.max()}"
        checked += int(inside.sum())
    assert checked > 5000


def test_axis_planes_equal_numpy_indexing(synth: SynthFactory, engine: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    volume = rng.integers(-1000, 3000, size=(12, 10, 14), dtype=np.int16)
    row_sp, col_sp, slice_sp = 0.9, 0.7, 2.0
    series = synth(volume, origin=(-5.0, -4.0, 10.0), orientation=AXIAL,
                   pixel_spacing=(row_sp, col_sp), slice_spacing=slice_sp)
    nk, nj, ni = volume.shape
    cases = (
        [(series.mpr("axial", index=k, spacing=f"{row_sp},{col_sp}"), volume[k]) for k in range(nk)]
        + [(series.mpr("sagittal", index=s, spacing=f"{slice_sp},{row_sp}"), volume[::-1, :, ni - 1 - s])
           for s in range(ni)]
        + [(series.mpr("coronal", index=c, spacing=f"{slice_sp},{col_sp}"), volume[::-1, c, :])
           for c in range(nj)]
    )
    for image_id, expected in cases:
        image = loadstone.load_image(image_id).result(60)
        assert image.pixel_data.dtype == np.int16, image_id
        np.testing.assert_array_equal(image.pixel_data, expected, err_msg=image_id)
    # The same planes through the interpolating engine (exact-grid fast path off).
    monkeypatch.setattr(_reslice, "exact_slices", lambda grid, geometry: None)
    for interp in ("linear", "nearest"):
        for image_id, expected in cases[:: 3]:
            image_id = image_id.replace(";volume=", f";interp={interp};volume=")
            image = loadstone.load_image(image_id).result(60)
            np.testing.assert_allclose(image.pixel_data, expected, atol=1e-3, err_msg=image_id)


def test_agrees_with_scipy_map_coordinates(synth: SynthFactory, engine: str) -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(99)
    shape = (16, 18, 20)
    volume = rng.normal(100.0, 40.0, size=shape).astype(np.float32)
    rotation = _rotation(rng)
    series = synth(volume, origin=(3.0, -7.0, 2.0), orientation=(rotation[:, 0], rotation[:, 1]),
                   pixel_spacing=(1.3, 0.9), slice_spacing=1.1)
    limit = np.array(shape[::-1]) - 0.5
    for n in range(10):
        interp = "linear" if n % 2 == 0 else "nearest"
        point = series.affine @ np.array([*(rng.uniform(0.1, 0.9, 3) * (np.array(shape[::-1]) - 1)), 1.0])
        image_id = series.mpr("oblique", normal=_fmt(_unit(rng)), point=_fmt(point[:3]),
                              size="48x40", spacing=f"{rng.uniform(0.5, 1.2):.6g}", interp=interp)
        image, module = _load(image_id)
        index = index_of_positions(series.affine, plane_positions(module))  # (..., (i, j, k))
        inside = np.all((index >= -0.5) & (index <= limit), axis=-1)
        coordinates = [index[..., 2], index[..., 1], index[..., 0]]
        reference = ndimage.map_coordinates(volume.astype(np.float64), coordinates,
                                            order=1 if interp == "linear" else 0, mode="nearest")
        assert inside.sum() > 100
        np.testing.assert_allclose(image.pixel_data[inside], reference[inside], rtol=0, atol=1e-3,
                                   err_msg=image_id)
        assert np.all(image.pixel_data[~inside] == volume.min()), "outside pixels get the volume minimum"


@pytest.mark.parametrize(("mode", "reduce"), [("mip", np.max), ("minip", np.min), ("mean", np.mean)])
def test_slab_projects_the_planes_it_spans(synth: SynthFactory, engine: str, mode: str,
                                           reduce: Any) -> None:
    rng = np.random.default_rng(5)
    volume = rng.normal(0.0, 100.0, size=(30, 30, 30)).astype(np.float32)
    series = synth(volume, origin=(-15.0, -15.0, -15.0))
    normal = np.array([0.3, -0.2, 0.93])
    normal /= np.linalg.norm(normal)
    keys = {"normal": _fmt(normal), "up": "0,-1,0", "size": "12x10", "spacing": "1"}
    slab = loadstone.load_image(series.mpr("oblique", point="0,0,0", slab=4, mode=mode, **keys)).result(60)
    planes = [loadstone.load_image(series.mpr("oblique", point=_fmt(offset * normal), **keys)).result(60)
              for offset in np.linspace(-2.0, 2.0, 5)]  # 4 mm at the finest spacing, 1 mm: 5 samples
    expected = reduce(np.stack([p.pixel_data for p in planes]).astype(np.float64), axis=0)
    np.testing.assert_allclose(slab.pixel_data, expected, atol=1e-3)
    module = loadstone.metadata.get("imagePlaneModule", slab.image_id)
    assert module["slice_thickness"] == 4.0


def test_slab_nearest_mip_keeps_stored_values(synth: SynthFactory, engine: str) -> None:
    volume = np.zeros((20, 16, 16), dtype=np.int16)
    volume[9, 8, 8] = 1234  # one bright voxel, 1 mm off the plane through z=10
    series = synth(volume, origin=(0.0, 0.0, 0.0))
    thin = loadstone.load_image(series.mpr("axial", position=10, spacing=1, interp="nearest")).result(60)
    assert thin.pixel_data.max() == 0
    image = loadstone.load_image(series.mpr("axial", position=10, slab=3, mode="mip", interp="nearest")
                                 ).result(60)
    assert image.pixel_data.dtype == np.int16
    assert image.pixel_data.max() == 1234
    assert tuple(np.argwhere(image.pixel_data == 1234)[0]) == (8, 8)
