"""Building volumes: rescale, the cache, sharing one build, metadata before pixels, the pool."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

import loadstone
import loadstone_mpr
from loadstone import InvalidImageError, LoadCancelledError

from .conftest import SynthFactory


def _volume(shape: tuple[int, int, int] = (10, 12, 14), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-500, 1500, size=shape, dtype=np.int16)


def test_get_volume_gives_array_and_affine(synth: SynthFactory) -> None:
    volume = _volume()
    series = synth(volume, origin=(1.0, 2.0, 3.0), pixel_spacing=(0.5, 0.6), slice_spacing=2.0,
                   intercepts=[-1024.0] * 10)
    built = loadstone_mpr.get_volume(series.volume_id)
    array, affine = built
    assert array.dtype == np.int16 and array.shape == volume.shape
    np.testing.assert_array_equal(array, volume)
    np.testing.assert_allclose(affine, series.affine)
    assert (built.slope, built.intercept) == (1.0, -1024.0)
    assert (built.window_center, built.window_width) == (40.0, 400.0)
    assert built.size_in_bytes == volume.nbytes
    assert not array.flags.writeable, "the cached volume is shared: read-only"
    np.testing.assert_allclose(built.modality_array(), volume.astype(np.float32) - 1024.0)
    assert "14x12x10 int16" in repr(built)


def test_planes_are_copies_not_views_of_the_volume(synth: SynthFactory) -> None:
    series = synth(_volume())
    built = loadstone_mpr.get_volume(series.volume_id)
    for image_id in (series.mpr("axial", index=2), series.mpr("sagittal", index=1),
                     series.mpr("oblique", normal="0,0,1")):
        image = loadstone.load_image(image_id).result(60)
        assert not np.shares_memory(image.pixel_data, built.array), image_id
        assert image.pixel_data.flags.c_contiguous and image.pixel_data.flags.writeable


def test_differing_rescales_give_float32_in_modality_units(synth: SynthFactory) -> None:
    volume = _volume(seed=1)
    slopes = np.linspace(0.5, 1.5, 10)
    intercepts = np.linspace(-1000.0, -900.0, 10)
    series = synth(volume, slopes=slopes, intercepts=intercepts)
    built = loadstone_mpr.get_volume(series.volume_id)
    assert built.array.dtype == np.float32
    assert (built.slope, built.intercept) == (1.0, 0.0)
    expected = volume * slopes[:, None, None] + intercepts[:, None, None]
    np.testing.assert_allclose(built.array, expected, rtol=1e-6, atol=1e-3)
    image = loadstone.load_image(series.mpr("axial", index=3)).result(60)
    assert (image.slope, image.intercept) == (1.0, 0.0)
    np.testing.assert_allclose(image.pixel_data, expected[3], rtol=1e-6, atol=1e-3)
    pixel = loadstone.metadata.get("imagePixelModule", series.mpr("sagittal"))
    assert pixel["bits_allocated"] == 32 and pixel["dtype"] == "<f4"


def test_the_volume_lives_in_the_core_cache(synth: SynthFactory) -> None:
    volume = _volume()
    series = synth(volume)
    loadstone.load_image(series.mpr("sagittal", index=2)).result(60)
    key = f"mpr-volume:volume={series.volume_id}"
    assert key in loadstone.cache
    info = loadstone.cache.get_cache_info()
    assert info.cache_size_bytes >= 2 * volume.nbytes  # the slices and the volume
    assert len(series.calls) == 10
    for index in range(5):  # the next planes reuse it
        loadstone.load_image(series.mpr("coronal", index=index)).result(60)
    assert len(series.calls) == 10
    # Evicted (here: removed), the next plane builds it again from the cached slices.
    loadstone.cache.remove_image_load_object(key)
    loadstone.load_image(series.mpr("axial")).result(60)
    assert key in loadstone.cache
    assert len(series.calls) == 10
    loadstone.cache.purge()
    loadstone.load_image(series.mpr("axial")).result(60)
    assert len(series.calls) == 20


def test_concurrent_planes_share_one_build(synth: SynthFactory) -> None:
    series = synth(_volume(), delay=0.05)
    ids = [series.mpr(plane, index=i) for plane in ("axial", "sagittal", "coronal") for i in range(3)]
    results: list[Any] = []

    def load(image_id: str) -> None:
        results.append(loadstone.load_image(image_id).result(60))

    threads = [threading.Thread(target=load, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == len(ids)
    assert sorted(series.calls) == sorted(series.ids), "each slice loaded exactly once"


def test_metadata_answers_before_any_pixel_loads(synth: SynthFactory) -> None:
    series = synth(_volume(), origin=(-3.0, -4.0, 5.0), pixel_spacing=(0.5, 0.5), slice_spacing=1.0)
    image_id = series.mpr("coronal", index=4)
    module = loadstone.metadata.get("imagePlaneModule", image_id)
    assert series.calls == []
    assert module["image_orientation_patient"] == [1.0, 0.0, 0.0, 0.0, 0.0, -1.0]
    assert module["image_position_patient"] == [-3.0, -2.0, 14.0]
    assert (module["rows"], module["columns"]) == (19, 14)
    assert module["frame_of_reference_uid"] == loadstone.metadata.get(
        "imagePlaneModule", series.ids[0])["frame_of_reference_uid"]
    pixel = loadstone.metadata.get("imagePixelModule", image_id)
    assert pixel["rows"] == 19 and pixel["dtype"] == "<f4"
    assert loadstone.metadata.get("voiLutModule", image_id)["window_center"] == [40.0]
    series_module = loadstone.metadata.get("generalSeriesModule", image_id)
    assert series_module["modality"] == "CT"
    assert series_module["series_instance_uid"] != "1.2.3"
    assert series_module["series_description"].startswith("MPR coronal")
    assert loadstone.metadata.get("generalImageModule", image_id)["image_type"][0] == "DERIVED"
    assert series.calls == []
    image = loadstone.load_image(image_id).result(60)
    assert loadstone.metadata.get("imagePlaneModule", image_id) == image.extra["image_plane_module"] == module


def test_metadata_ignores_other_ids(synth: SynthFactory) -> None:
    from loadstone_mpr.metadata import metadata_provider

    assert metadata_provider("imagePlaneModule", "example://ct/1") is None
    assert metadata_provider("imagePlaneModule", "mpr:axial;bogus=1;series=example://ct") is None
    assert metadata_provider("noSuchModule", "mpr:axial;series=example://ct") is None
    assert metadata_provider("imagePlaneModule", "mpr:axial;volume=not-registered") is None


def test_geometry_only_after_load_still_builds(synth: SynthFactory) -> None:
    volume = _volume(seed=2)
    series = synth(volume, metadata="after-load", slice_spacing=1.5)
    assert loadstone.metadata.get("imagePlaneModule", series.mpr("axial")) is None  # not known yet
    built = loadstone_mpr.get_volume(series.volume_id)
    np.testing.assert_array_equal(built.array, volume)
    assert loadstone.metadata.get("imagePlaneModule", series.mpr("axial"))["rows"] == 12


def test_a_full_request_pool_does_not_deadlock(synth: SynthFactory, caplog: pytest.LogCaptureFixture) -> None:
    """Planes waiting for their volume fill every PREFETCH slot the slices need."""
    caplog.set_level("INFO", logger="loadstone.mpr")
    series = synth(_volume(shape=(12, 8, 8)), delay=0.02)
    pool = loadstone.pool
    saved = pool.get_max_concurrent("prefetch")
    pool.set_max_concurrent("prefetch", 1)  # the first plane takes the only slot, then waits
    try:
        loads = loadstone.load_images([series.mpr("axial", index=k) for k in range(8)])
        images = [load.result(30) for load in loads]
    finally:
        pool.set_max_concurrent("prefetch", saved)
    assert [image.rows for image in images] == [8] * 8
    assert "loading its slices directly" in caplog.text


def test_planes_holding_every_worker_thread_do_not_deadlock(synth: SynthFactory,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A waiting plane holds the thread it runs on: with every worker held, the build loads the slices."""
    caplog.set_level("INFO", logger="loadstone.mpr")
    series = synth(_volume(shape=(6, 8, 8)), delay=0.01)
    gate = threading.Event()  # holds the build until every plane waits for it

    def gatekeeper(module: str, image_id: str) -> None:
        if module == "imagePlaneModule" and image_id in series.ids:
            gate.wait(10)

    loadstone.metadata.add_provider(gatekeeper, priority=10)
    pool = loadstone.pool
    saved = pool.get_max_concurrent("interaction"), pool.get_max_concurrent(None)
    pool.set_max_concurrent("interaction", 16)  # as many planes at once as there are worker threads
    pool.set_max_concurrent(None, 16)
    try:
        loads = [loadstone.load_image(series.mpr("axial", index=k % 6, size=4 + k)) for k in range(16)]
        time.sleep(0.3)
        gate.set()
        images = [load.result(30) for load in loads]
    finally:
        gate.set()
        loadstone.metadata.remove_provider(gatekeeper)
        pool.set_max_concurrent("interaction", saved[0])
        pool.set_max_concurrent(None, saved[1])
    assert [image.rows for image in images] == [4 + k for k in range(16)]
    assert "loading its slices directly" in caplog.text


def test_a_stack_of_planes_is_a_series(synth: SynthFactory) -> None:
    volume = _volume()
    series = synth(volume)
    ids = loadstone.series_image_ids(series.mpr("sagittal"))
    assert len(ids) == 14
    assert ids[0] == series.mpr("sagittal", index=0)
    images = [load.result(60) for load in loadstone.load_images(ids)]
    np.testing.assert_array_equal(images[0].pixel_data, volume[::-1, :, 13])
    # A stack is a series too: an MPR of the sagittal stack is the original volume again.
    again = loadstone_mpr.get_volume(series.mpr("sagittal"))
    np.testing.assert_allclose(again.array[:, ::-1, :].transpose(1, 2, 0)[:, :, ::-1], volume)
    assert loadstone.series_image_ids(series.mpr("axial", index=3)) == [series.mpr("axial", index=3)]
    with pytest.raises(loadstone.UnsupportedError):
        loadstone.series_image_ids(series.mpr("oblique", normal="0,0,1"))


def test_cancelling_the_only_plane_stops_the_build(synth: SynthFactory) -> None:
    series = synth(_volume(shape=(6, 4, 4)), delay=0.5)
    load = loadstone.load_image(series.mpr("axial"))
    time.sleep(0.1)
    assert load.cancel()
    with pytest.raises(LoadCancelledError):
        load.result(5)
    key = f"mpr-volume:volume={series.volume_id}"
    deadline = time.monotonic() + 5
    while key in loadstone.cache and time.monotonic() < deadline:
        time.sleep(0.02)
    assert key not in loadstone.cache, "a cancelled build leaves no cache entry"
    image = loadstone.load_image(series.mpr("axial")).result(30)  # and a new request builds again
    assert image.rows == 4


def test_progress_of_the_build_reaches_the_plane(synth: SynthFactory) -> None:
    series = synth(_volume(shape=(8, 4, 4)), delay=0.01)
    image_id = series.mpr("axial")
    seen: list[tuple[int, int]] = []
    unsubscribe = loadstone.events.subscribe(
        "IMAGE_LOAD_PROGRESS",
        lambda event, detail: seen.append((detail["loaded"], detail["total"]))
        if detail["image_id"] == image_id else None)
    try:
        loadstone.load_image(image_id).result(30)
    finally:
        unsubscribe()
    assert seen and seen[-1] == (8, 8)


def test_registering_other_ids_drops_the_old_volume(synth: SynthFactory) -> None:
    first = synth(_volume(seed=4))
    second = synth(_volume(seed=5))
    loadstone_mpr.get_volume(first.volume_id)
    loadstone_mpr.create_volume(first.volume_id, second.ids)
    np.testing.assert_array_equal(loadstone_mpr.get_volume(first.volume_id).array, second.volume)
    assert loadstone_mpr.remove_volume(first.volume_id)
    assert not loadstone_mpr.remove_volume(first.volume_id)
    with pytest.raises(InvalidImageError, match="create_volume"):
        loadstone.load_image(f"mpr:axial;volume={first.volume_id}").result(30)


def test_create_volume_checks_its_arguments() -> None:
    with pytest.raises(ValueError):
        loadstone_mpr.create_volume("", ["a:b"])
    with pytest.raises(TypeError):
        loadstone_mpr.create_volume("v", "a:b")
    with pytest.raises(TypeError):
        loadstone_mpr.create_volume("v", ["a:b", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="its own planes"):
        loadstone_mpr.create_volume("v", ["a:b", "mpr:axial;index=0;volume=v"])


def test_config_refuses_bad_values() -> None:
    with pytest.raises(ValueError):
        loadstone_mpr.config.max_volume_bytes = 0
    with pytest.raises(ValueError):
        loadstone_mpr.config.engine = "cuda"
    with pytest.raises(ValueError):
        loadstone_mpr.config.spacing_tolerance = -1
