"""Placement in patient space (LPS): acquisitions in any orientation, slice order and spacing."""

from __future__ import annotations

import numpy as np
import pytest

import loadstone
import loadstone_mpr

from .conftest import SynthFactory
from .helpers import AXIAL, CORONAL, SAGITTAL, index_of_positions, plane_positions, voxel_positions

# One lattice of 1 mm voxels: x -10..9, y -8..11, z 0..15 (LPS, mm).
X = np.arange(-10, 10)
Y = np.arange(-8, 12)
Z = np.arange(0, 16)


def phantom(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Integer values with no symmetry, so any flip or swap of axes shows."""
    return ((7 * x + 3 * y + 11 * z + x * y + 2 * z * z) % 997).astype(np.int16)


def _axial_acquisition(synth: SynthFactory) -> tuple[object, np.ndarray]:
    z, y, x = np.meshgrid(Z, Y, X, indexing="ij")  # slices +z, rows +y, columns +x
    volume = phantom(x, y, z)
    return synth(volume, origin=(X[0], Y[0], Z[0]), orientation=AXIAL), volume


def _sagittal_acquisition(synth: SynthFactory, reverse: bool = False) -> tuple[object, np.ndarray]:
    # Columns +y, rows -z (head first), slices along the normal (-1, 0, 0): from the left (x=9) rightwards.
    x, z, y = np.meshgrid(X[::-1], Z[::-1], Y, indexing="ij")
    volume = phantom(x, y, z)
    order = list(range(len(X)))[::-1] if reverse else None
    return synth(volume, origin=(X[-1], Y[0], Z[-1]), orientation=SAGITTAL, order=order), volume


def _coronal_acquisition(synth: SynthFactory) -> tuple[object, np.ndarray]:
    # Columns +x, rows -z, slices along (0, 1, 0): anterior to posterior.
    y, z, x = np.meshgrid(Y, Z[::-1], X, indexing="ij")
    volume = phantom(x, y, z)
    return synth(volume, origin=(X[0], Y[0], Z[-1]), orientation=CORONAL), volume


@pytest.mark.parametrize("acquisition", ["sagittal", "sagittal-reversed", "coronal"])
def test_any_acquisition_gives_the_same_planes(synth: SynthFactory, acquisition: str) -> None:
    axial, reference = _axial_acquisition(synth)
    if acquisition == "coronal":
        other, _ = _coronal_acquisition(synth)
    else:
        other, _ = _sagittal_acquisition(synth, reverse=acquisition.endswith("reversed"))
    for plane, count in (("axial", len(Z)), ("sagittal", len(X)), ("coronal", len(Y))):
        for index in range(count):
            expected = loadstone.load_image(axial.mpr(plane, index=index)).result(60)  # type: ignore[attr-defined]
            got = loadstone.load_image(other.mpr(plane, index=index)).result(60)  # type: ignore[attr-defined]
            np.testing.assert_array_equal(got.pixel_data, expected.pixel_data,
                                          err_msg=f"{acquisition} {plane} {index}")
            assert loadstone.metadata.get("imagePlaneModule", got.image_id)["image_position_patient"] == \
                loadstone.metadata.get("imagePlaneModule", expected.image_id)["image_position_patient"]
    # And the axial planes are the axial acquisition's own slices, in order.
    for k in range(len(Z)):
        got = loadstone.load_image(other.mpr("axial", index=k)).result(60)  # type: ignore[attr-defined]
        np.testing.assert_array_equal(got.pixel_data, reference[k])


def test_volume_voxels_sit_where_the_affine_says(synth: SynthFactory) -> None:
    for make in (_axial_acquisition, _sagittal_acquisition, _coronal_acquisition):
        series, _ = make(synth)
        array, affine = loadstone_mpr.get_volume(series.volume_id)  # type: ignore[attr-defined]
        lps = voxel_positions(affine, array.shape)
        np.testing.assert_array_equal(array, phantom(lps[..., 0].round(), lps[..., 1].round(),
                                                     lps[..., 2].round()))
        normal = np.cross(affine[:3, 0], affine[:3, 1])
        assert np.dot(affine[:3, 2], normal) > 0, "slices are ordered along the normal"


def test_reversed_and_shuffled_slice_order_build_the_same_volume(synth: SynthFactory) -> None:
    rng = np.random.default_rng(3)
    volume = rng.integers(0, 1000, size=(9, 6, 7), dtype=np.int16)
    forward = synth(volume, origin=(1.0, 2.0, 3.0), slice_spacing=2.0)
    backward = synth(volume, origin=(1.0, 2.0, 3.0), slice_spacing=2.0, order=list(range(9))[::-1])
    shuffled = synth(volume, origin=(1.0, 2.0, 3.0), slice_spacing=2.0, order=list(rng.permutation(9)))
    reference = loadstone_mpr.get_volume(forward.volume_id)
    np.testing.assert_array_equal(reference.array, volume)
    for other in (backward, shuffled):
        built = loadstone_mpr.get_volume(other.volume_id)
        np.testing.assert_array_equal(built.array, volume)
        np.testing.assert_allclose(built.affine, reference.affine)
        assert [i.rsplit("/", 1)[1] for i in built.image_ids] == [str(k) for k in range(9)]


def test_slices_listed_against_the_normal_are_reordered(synth: SynthFactory) -> None:
    # Slices stepping -z with an axial orientation (normal +z): the volume runs along +z anyway.
    volume = np.arange(5 * 4 * 3, dtype=np.int16).reshape(5, 4, 3)
    series = synth(volume, origin=(0.0, 0.0, 20.0), slice_step=(0.0, 0.0, -4.0))
    built = loadstone_mpr.get_volume(series.volume_id)
    np.testing.assert_array_equal(built.array, volume[::-1])
    np.testing.assert_allclose(built.affine[:3, 2], [0.0, 0.0, 4.0])
    np.testing.assert_allclose(built.affine[:3, 3], [0.0, 0.0, 4.0])


def test_anisotropic_spacing(synth: SynthFactory) -> None:
    shape = (8, 20, 30)
    series = synth(np.zeros(shape, dtype=np.float32), origin=(-7.0, -5.0, 0.0),
                   pixel_spacing=(0.5, 0.8), slice_spacing=2.5)
    lps = voxel_positions(series.affine, shape)
    series.volume[...] = lps @ np.array([1.0, 2.0, -3.0])
    built = loadstone_mpr.get_volume(series.volume_id)
    assert built.spacing == pytest.approx((0.8, 0.5, 2.5))
    image = loadstone.load_image(series.mpr("sagittal")).result(60)
    module = loadstone.metadata.get("imagePlaneModule", image.image_id)
    # Isotropic pixels at the finest spacing, covering the volume: rows along z (17.5 mm), columns along y.
    assert module["pixel_spacing"] == [0.5, 0.5]
    assert (image.row_pixel_spacing, image.column_pixel_spacing) == (0.5, 0.5)
    assert (image.rows, image.columns) == (36, 20)
    where = plane_positions(module)
    np.testing.assert_allclose(image.pixel_data, where @ np.array([1.0, 2.0, -3.0]), atol=1e-4)
    assert module["image_orientation_patient"] == [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]


def test_a_point_found_on_a_plane_maps_back_to_patient_space(synth: SynthFactory) -> None:
    volume = np.zeros((20, 16, 24), dtype=np.int16)  # sagittal acquisition: 20 slices along -x
    spot = (13, 5, 17)  # (k, j, i)
    volume[spot] = 1000
    series = synth(volume, origin=(30.0, -20.0, 50.0), orientation=SAGITTAL, pixel_spacing=(1.5, 1.0),
                   slice_spacing=1.2)
    k, j, i = spot
    point = (series.affine @ np.array([i, j, k, 1.0]))[:3]
    for plane, position in (("axial", point[2]), ("coronal", point[1]), ("sagittal", point[0])):
        image_id = series.mpr(plane, position=f"{position:.9g}", interp="nearest", spacing="0.5")
        image = loadstone.load_image(image_id).result(60)
        r, c = np.unravel_index(int(np.argmax(image.pixel_data)), image.pixel_data.shape)
        assert image.pixel_data[r, c] == 1000, plane
        module = loadstone.metadata.get("imagePlaneModule", image_id)
        found = plane_positions(module)[r, c]
        assert np.linalg.norm(found - point) < 1.0, f"{plane}: found at {found}, placed at {point}"
        voxel = index_of_positions(series.affine, found)
        assert np.allclose(voxel, (i, j, k), atol=0.5)
