"""Bad input: each kind of broken series or impossible plane fails with its typed error."""

from __future__ import annotations

import numpy as np
import pytest

import loadstone
import loadstone_mpr
from loadstone import (
    InvalidImageError,
    LoadstoneError,
    ResourceLimitError,
    UnknownSchemeError,
    UnsupportedError,
)

from .conftest import SynthFactory


def _volume(shape: tuple[int, int, int] = (8, 10, 12)) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 1000, size=shape, dtype=np.int16)


def _error(image_id: str) -> LoadstoneError:
    with pytest.raises(LoadstoneError) as caught:
        loadstone.load_image(image_id).result(30)
    error = caught.value
    assert error.image_id == image_id, "the error names the plane asked for"
    return error


def test_mixed_orientations_name_the_odd_slice(synth: SynthFactory) -> None:
    series = synth(_volume(), per_slice={3: {"image_orientation_patient": [1, 0, 0, 0, 0.8, 0.6]}})
    error = _error(series.mpr("axial"))
    assert isinstance(error, InvalidImageError)
    assert "orientation" in str(error) and repr(series.ids[3]) in str(error)
    assert repr(series.ids[2]) not in str(error)


def test_a_missing_slice_is_uneven_spacing(synth: SynthFactory) -> None:
    volume = _volume((10, 6, 6))
    series = synth(volume[[0, 1, 2, 3, 5, 6, 7, 8, 9]],
                   positions={k: (0.0, 0.0, float(k if k < 4 else k + 1)) for k in range(9)})
    error = _error(series.mpr("sagittal"))
    assert isinstance(error, InvalidImageError)
    message = str(error)
    assert "uneven slice spacing" in message and "missing slice" in message
    assert f"{series.ids[3]!r} -> {series.ids[4]!r} 2.000 mm" in message


def test_a_single_slice_is_not_a_volume(synth: SynthFactory) -> None:
    series = synth(_volume((1, 6, 6)))
    error = _error(series.mpr("axial"))
    assert isinstance(error, InvalidImageError) and "at least two" in str(error)
    with pytest.raises(InvalidImageError):
        loadstone_mpr.get_volume(series.volume_id)


def test_two_slices_at_one_position(synth: SynthFactory) -> None:
    series = synth(_volume((4, 6, 6)), positions={2: (0.0, 0.0, 1.0)})
    error = _error(series.mpr("axial"))
    assert isinstance(error, InvalidImageError) and "same position" in str(error)


def test_mixed_sizes(synth: SynthFactory) -> None:
    series = synth(_volume((5, 6, 6)), shapes={4: np.zeros((6, 7), dtype=np.int16)})
    error = _error(series.mpr("axial"))
    assert isinstance(error, InvalidImageError) and "6x7" in str(error) and repr(series.ids[4]) in str(error)


def test_sizes_that_lie_in_the_metadata_are_caught_after_loading(synth: SynthFactory) -> None:
    series = synth(_volume((5, 6, 6)), per_slice={2: {"rows": 6, "columns": 6}},
                   shapes={2: np.zeros((5, 6), dtype=np.int16)})
    series_id = series.mpr("axial")
    loadstone.cache.purge()
    error = _error(series_id)
    assert isinstance(error, InvalidImageError) and repr(series.ids[2]) in str(error)


@pytest.mark.parametrize(("keys", "says"), [
    ({"position": "-20"}, "misses the volume"),
    ({"position": "12.6"}, "misses the volume"),
    ({"index": 8}, "has 8 axial planes"),
])
def test_axis_planes_that_miss_the_volume(synth: SynthFactory, keys: dict[str, object], says: str) -> None:
    series = synth(_volume())  # z from 0 to 7 mm
    error = _error(series.mpr("axial", **keys))
    assert isinstance(error, InvalidImageError) and says in str(error)


def test_oblique_plane_that_misses_the_volume(synth: SynthFactory) -> None:
    series = synth(_volume())
    error = _error(series.mpr("oblique", normal="0.2,0.3,0.9", point="500,500,500", size="32x32"))
    assert isinstance(error, InvalidImageError) and "misses the volume" in str(error)
    # Beside the volume but parallel to it: no sample inside either.
    error = _error(series.mpr("oblique", normal="0,0,1", point="0,0,30"))
    assert isinstance(error, InvalidImageError)


def test_up_parallel_to_normal(synth: SynthFactory) -> None:
    series = synth(_volume())
    error = _error(series.mpr("oblique", normal="0,0,1", up="0,0,-2"))
    assert isinstance(error, InvalidImageError) and "parallel" in str(error)


def test_a_volume_over_the_budget_is_refused_before_loading(synth: SynthFactory) -> None:
    series = synth(_volume())  # 8 x 10 x 12 int16 = 1920 bytes
    loadstone_mpr.config.max_volume_bytes = 1000
    error = _error(series.mpr("axial"))
    assert isinstance(error, ResourceLimitError)
    assert "1920 bytes" in str(error) and "max_volume_bytes" in str(error)
    assert series.calls == [], "refused from the metadata, before any slice loaded"
    loadstone_mpr.config.max_volume_bytes = 1920
    assert loadstone.load_image(series.mpr("axial")).result(30).rows == 10


def test_the_budget_holds_when_geometry_needs_pixels_first(synth: SynthFactory) -> None:
    series = synth(_volume(), metadata="after-load", slopes=np.linspace(1, 2, 8))  # float32: 3840 bytes
    loadstone_mpr.config.max_volume_bytes = 3000
    error = _error(series.mpr("axial"))
    assert isinstance(error, ResourceLimitError) and "3840 bytes" in str(error)


def test_a_plane_over_the_pixel_limit(synth: SynthFactory) -> None:
    series = synth(_volume())
    error = _error(series.mpr("axial", size="100000x100000"))
    assert isinstance(error, ResourceLimitError) and "max_plane_pixels" in str(error)


def test_slices_without_geometry(synth: SynthFactory) -> None:
    series = synth(_volume(), metadata="never")
    error = _error(series.mpr("axial"))
    assert isinstance(error, InvalidImageError) and "no patient geometry" in str(error)


def test_colour_slices_are_unsupported(synth: SynthFactory) -> None:
    colour = np.zeros((3, 6, 6, 3), dtype=np.uint8)
    series = synth(colour)
    error = _error(series.mpr("axial"))
    assert isinstance(error, UnsupportedError)


def test_unknown_sources() -> None:
    assert isinstance(_error("mpr:axial;volume=no-such-volume"), InvalidImageError)
    assert isinstance(_error("mpr:axial;series=nosuchscheme://x"), UnknownSchemeError)
    assert isinstance(_error("mpr:axial;series=example://nosuchseries"), UnknownSchemeError)


def test_a_bad_id_fails_at_once_without_a_volume() -> None:
    error = _error("mpr:axial;slice=4;series=example://ct")
    assert isinstance(error, InvalidImageError) and "unknown key 'slice'" in str(error)
    assert not [key for key in loadstone.cache.keys() if key.startswith("mpr-volume:")]  # noqa: SIM118


def test_a_slice_that_fails_to_load_fails_the_plane(synth: SynthFactory) -> None:
    series = synth(_volume())
    broken = [*series.ids[:3], f"{series.scheme}://s/99", *series.ids[4:]]
    loadstone_mpr.create_volume("broken-" + series.volume_id, broken)
    try:
        image_id = f"mpr:axial;volume=broken-{series.volume_id}"
        error = _error(image_id)
        assert isinstance(error, InvalidImageError)
    finally:
        loadstone_mpr.remove_volume("broken-" + series.volume_id)
