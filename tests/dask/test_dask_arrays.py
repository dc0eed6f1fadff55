"""from_image_ids and from_series on a real 2-worker LocalCluster, pixel for pixel against local loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
from dask_helpers import OrthancServer, Series, colour_frames_file, ct_files, local_stack, upload_files

import loadstone
import loadstone_dask
from loadstone.volume import Volume
from loadstone_dask.clients import current_client

pytestmark = pytest.mark.integration  # real clusters (and servers) on 127.0.0.1


def assert_same_volume(lazy: Volume, local: Volume) -> None:
    assert isinstance(lazy, Volume) and isinstance(lazy.array, da.Array)
    array, affine = lazy
    assert array is lazy.array
    np.testing.assert_array_equal(array.compute(), local.array)
    assert array.dtype == local.array.dtype
    np.testing.assert_allclose(affine, local.affine)
    assert lazy.spacing == pytest.approx(local.spacing)
    assert lazy.image_ids == local.image_ids
    assert (lazy.slope, lazy.intercept) == (local.slope, local.intercept)
    assert (lazy.window_center, lazy.window_width) == (local.window_center, local.window_width)


def test_no_cluster_runs_on_dask_local_scheduler(dicomfile_series: Series) -> None:
    assert current_client() is None
    x = loadstone_dask.from_image_ids(dicomfile_series.image_ids, images_per_chunk=5)
    assert x.chunks[0] == (5, 5, 5, 5, 4)
    np.testing.assert_array_equal(x.compute(), local_stack(dicomfile_series.image_ids))
    assert_same_volume(loadstone_dask.from_series(dicomfile_series.series_id),
                       loadstone.load_volume(dicomfile_series.series_id))


def test_dicomfile_series_on_the_cluster(client: Any, dicomfile_series: Series) -> None:
    ids = dicomfile_series.image_ids
    x = loadstone_dask.from_image_ids(ids, images_per_chunk=5)
    assert (x.shape, x.dtype) == ((24, 64, 64), np.int16)
    np.testing.assert_array_equal(x.compute(), local_stack(ids))
    assert_same_volume(loadstone_dask.from_series(dicomfile_series.series_id, images_per_chunk=4),
                       loadstone.load_volume(dicomfile_series.series_id))
    states = client.run(loadstone_dask.worker_state)
    # The chunks ran on the workers, whose caches are bounded (0.1 of 2 GiB) and hold nothing once
    # dask has the pixels.
    assert all(state["cache_maximum_bytes"] == int(0.1 * 2 * 2**30) for state in states.values())
    assert all(state["images_cached"] == 0 for state in states.values()), states


def test_wadors_series_from_orthanc(client: Any, wadors_series: Series) -> None:
    ids = wadors_series.image_ids
    np.testing.assert_array_equal(loadstone_dask.from_image_ids(ids, images_per_chunk=6).compute(),
                                  local_stack(ids))
    assert_same_volume(loadstone_dask.from_series(wadors_series.series_id, images_per_chunk=6),
                       loadstone.load_volume(wadors_series.series_id))


def test_multiframe_instance(client: Any, multiframe_file: Series, orthanc_server: OrthancServer,
                             tmp_path: Path) -> None:
    ids = multiframe_file.image_ids
    assert len(ids) == 12 and ids[0].endswith("?frame=1")
    x = loadstone_dask.from_image_ids(ids, images_per_chunk=5)
    assert (x.shape, x.dtype) == ((12, 64, 64, 3), np.uint8)
    np.testing.assert_array_equal(x.compute(), local_stack(ids))
    study, series, sops = upload_files(orthanc_server, [colour_frames_file(tmp_path, 12)])
    frames = [orthanc_server.wadors_id(study, series, sops[0], frame) for frame in range(1, 13)]
    np.testing.assert_array_equal(loadstone_dask.from_image_ids(frames, images_per_chunk=5).compute(),
                                  local_stack(frames))
    np.testing.assert_array_equal(local_stack(frames), local_stack(ids))


def test_example_ct_and_rescale(client: Any) -> None:
    assert_same_volume(loadstone_dask.from_series("example://ct"), loadstone.load_volume("example://ct"))
    ids = loadstone.series_image_ids("example://ct")
    x = loadstone_dask.from_image_ids(ids, rescale=True)
    assert x.dtype == np.float32
    expected = np.stack([load.result(30).modality_pixel_data() for load in loadstone.load_images(ids)])
    np.testing.assert_array_equal(x.compute(), expected)
    volume = loadstone_dask.from_series("example://ct", rescale=True)
    assert (volume.slope, volume.intercept, volume.array.dtype) == (1.0, 0.0, np.float32)
    np.testing.assert_array_equal(volume.array.compute(), loadstone.load_volume("example://ct").modality_array())


def test_colour_images(client: Any) -> None:
    x = loadstone_dask.from_image_ids(["example://color/0", "example://color/0"])
    assert (x.shape, x.dtype) == ((2, 256, 256, 3), np.uint8)
    np.testing.assert_array_equal(x.compute(), local_stack(["example://color/0"] * 2))


def test_an_image_of_another_size_fails_its_chunk_naming_it(client: Any, dicomfile_series: Series) -> None:
    ids = [*dicomfile_series.image_ids[:6], "example://ct/3"]
    x = loadstone_dask.from_image_ids(ids, images_per_chunk=4)
    with pytest.raises(loadstone.InvalidImageError, match="128x128 int16") as caught:
        x.compute()
    assert caught.value.image_id == "example://ct/3"
    np.testing.assert_array_equal(x[:4].compute(), local_stack(ids[:4]))  # the other chunk is fine


def test_from_series_refuses_what_load_volume_refuses(tmp_path: Path, dicomfile_series: Series) -> None:
    gap = tmp_path / "gap"
    ct_files(gap, 6, 32, shuffle=False)[3].unlink()  # a missing slice: uneven spacing
    mixed = tmp_path / "mixed"
    ct_files(mixed, 4, 32)
    for index, path in enumerate(ct_files(tmp_path / "other", 4, 32)):  # a second series in the folder
        path.rename(mixed / f"other{index}.dcm")
    for path in (gap, mixed):
        with pytest.raises(loadstone.LoadstoneError) as local:
            loadstone.load_volume(f"dicomfile:{path}")
        with pytest.raises(type(local.value)) as lazy:
            loadstone_dask.from_series(f"dicomfile:{path}")
        assert str(lazy.value) == str(local.value)
    with pytest.raises(TypeError, match="from_image_ids"):
        loadstone_dask.from_series(dicomfile_series.image_ids)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="from_series"):
        loadstone_dask.from_image_ids(dicomfile_series.series_id)
