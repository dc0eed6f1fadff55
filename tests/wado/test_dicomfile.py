"""The ``dicomfile:`` loader: ids, the file manager, the root folder, series, bad input."""

from __future__ import annotations

import io
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pydicom
import pytest
import synthetic
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

import loadstone
from loadstone.testing import LoaderContract
from loadstone_wado import config, file_manager
from loadstone_wado.part10 import dataset_cache
from loadstone_wado.schemes import dicomfile

TESTDATA = Path(pydicom.data.get_testdata_file("CT_small.dcm", download=False)).parent


def _settled(load: loadstone.ImageLoadObject, timeout: float = 30.0) -> None:
    """Wait until the load settled and the cache's own done-callbacks ran."""
    import threading

    done = threading.Event()
    load.promise.add_done_callback(lambda _: done.set())
    assert done.wait(timeout)


def _fails_without_cache_entry(image_id: str, error: type[Exception], match: str | None = None) -> Exception:
    load = loadstone.load_and_cache_image(image_id)
    with pytest.raises(error, match=match) as info:
        load.result(30)
    _settled(load)
    deadline = time.monotonic() + 2
    while image_id in loadstone.cache and time.monotonic() < deadline:
        time.sleep(0.01)
    assert image_id not in loadstone.cache, "a failed load stayed in the image cache"
    assert info.value.image_id in (None, image_id)
    return info.value


# -- loading ---------------------------------------------------------------------------
def test_single_and_multi_frame(testdata: Callable[[str], str]) -> None:
    image = loadstone.load_and_cache_image(f"dicomfile:{testdata('CT_small.dcm')}").result(30)
    assert (image.rows, image.columns) == (128, 128)
    reference = pydicom.dcmread(testdata("rtdose.dcm")).pixel_array
    for frame in (1, 7, 15):
        image = loadstone.load_image(f"dicomfile:{testdata('rtdose.dcm')}?frame={frame}").result(30)
        assert np.array_equal(image.pixel_data, reference[frame - 1])
        assert image.extra["frame"] == frame and image.extra["number_of_frames"] == 15


def test_multi_frame_images_do_not_pin_the_whole_buffer(testdata: Callable[[str], str]) -> None:
    image = loadstone.load_image(f"dicomfile:{testdata('rtdose.dcm')}?frame=2").result(30)
    assert image.pixel_data.base is None or image.pixel_data.base.nbytes == image.pixel_data.nbytes


def test_relative_paths_and_file_urls(testdata: Callable[[str], str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(TESTDATA)
    image = loadstone.load_image("dicomfile:CT_small.dcm").result(30)
    assert image.rows == 128
    assert loadstone.load_image(f"dicomfile:file://{testdata('CT_small.dcm')}").result(30).rows == 128


def test_file_changed_on_disk_is_read_again(tmp_path: Path, testdata: Callable[[str], str]) -> None:
    path = tmp_path / "a.dcm"
    shutil.copy(testdata("CT_small.dcm"), path)
    first = loadstone.load_image(f"dicomfile:{path}").result(30)
    replacement = tmp_path / "b.dcm"
    shutil.copy(testdata("MR_small.dcm"), replacement)
    os.replace(replacement, path)  # replaced by rename, as the README asks
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    second = loadstone.load_image(f"dicomfile:{path}", ignore_cache=True).result(30)
    assert (first.rows, second.rows) == (128, 64)


def test_works_with_reading_instead_of_mapping(testdata: Callable[[str], str]) -> None:
    config.configure(mmap_files=False)
    image = loadstone.load_image(f"dicomfile:{testdata('rtdose.dcm')}?frame=3").result(30)
    assert np.array_equal(image.pixel_data, pydicom.dcmread(testdata("rtdose.dcm")).pixel_array[2])


# -- the file manager ---------------------------------------------------------------------
def test_file_manager_bytes_paths_and_file_objects(testdata: Callable[[str], str]) -> None:
    path = testdata("MR_small.dcm")
    data = Path(path).read_bytes()
    ids = [file_manager.add(data), file_manager.add(path), file_manager.add(io.BytesIO(data))]
    assert len(set(ids)) == 3 and all(i.startswith("dicomfile:") for i in ids)
    for image_id in ids:
        assert loadstone.load_image(image_id).result(30).rows == 64
    assert file_manager.count() == 3
    assert file_manager.remove(ids[0]) and not file_manager.remove(ids[0])
    _fails_without_cache_entry(ids[0], loadstone.InvalidImageError, "file manager has no file")
    file_manager.purge()
    assert file_manager.count() == 0
    newer = file_manager.add(data)
    assert newer not in ids, "indices are never reused"
    with pytest.raises(TypeError):
        file_manager.add(12)  # type: ignore[arg-type]


def test_file_manager_multi_frame(testdata: Callable[[str], str]) -> None:
    image_id = file_manager.add(Path(testdata("SC_rgb_rle_2frame.dcm")).read_bytes())
    reference = pydicom.dcmread(testdata("SC_rgb_rle_2frame.dcm")).pixel_array
    image = loadstone.load_image(f"{image_id}?frame=2").result(30)
    assert np.array_equal(image.pixel_data, reference[1])
    assert loadstone.series_image_ids(image_id) == [f"{image_id}?frame=1", f"{image_id}?frame=2"]


# -- the root folder ------------------------------------------------------------------------
@pytest.fixture
def rooted(tmp_path: Path, testdata: Callable[[str], str]) -> Iterator[Path]:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    shutil.copy(testdata("CT_small.dcm"), root / "sub" / "ct.dcm")
    outside = tmp_path / "outside.dcm"
    shutil.copy(testdata("MR_small.dcm"), outside)
    (root / "escape.dcm").symlink_to(outside)
    (root / "inner.dcm").symlink_to(root / "sub" / "ct.dcm")
    config.configure(root=root)
    yield root


def test_root_allows_inside_paths(rooted: Path) -> None:
    for image_id in (f"dicomfile:{rooted}/sub/ct.dcm", "dicomfile:sub/ct.dcm",
                     f"dicomfile:{rooted}/inner.dcm", f"dicomfile:{rooted}/sub/../sub/ct.dcm"):
        assert loadstone.load_image(image_id).result(30).rows == 128, image_id


@pytest.mark.parametrize("path", ["{root}/../outside.dcm", "{root}/escape.dcm", "../outside.dcm",
                                  "/etc/passwd", "sub/../../outside.dcm"])
def test_root_denies_escapes(rooted: Path, path: str) -> None:
    image_id = "dicomfile:" + path.format(root=rooted)
    error = _fails_without_cache_entry(image_id, loadstone.PolicyDeniedError, "outside the allowed folder")
    assert str(rooted) in str(error)


def test_root_applies_to_file_manager_paths_and_series(rooted: Path, tmp_path: Path) -> None:
    image_id = file_manager.add(tmp_path / "outside.dcm")
    _fails_without_cache_entry(image_id, loadstone.PolicyDeniedError)
    with pytest.raises(loadstone.PolicyDeniedError):
        loadstone.series_image_ids(f"dicomfile:{tmp_path}")
    ids = loadstone.series_image_ids(f"dicomfile:{rooted}")
    assert all("escape" not in i and "outside" not in i for i in ids), "a symlink out of the root is skipped"


# -- bad input ------------------------------------------------------------------------------
def test_truncated_pixel_data(testdata: Callable[[str], str]) -> None:
    _fails_without_cache_entry(f"dicomfile:{testdata('MR_truncated.dcm')}", loadstone.InvalidImageError,
                               "truncated")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.dcm").write_bytes(b"")
    _fails_without_cache_entry(f"dicomfile:{tmp_path / 'empty.dcm'}", loadstone.InvalidImageError, "empty")


def test_png_named_dcm(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("L", (8, 8)).save(tmp_path / "picture.dcm", format="PNG")
    _fails_without_cache_entry(f"dicomfile:{tmp_path / 'picture.dcm'}", loadstone.InvalidImageError, "PNG")


def test_no_transfer_syntax(testdata: Callable[[str], str]) -> None:
    image_id = f"dicomfile:{testdata('meta_missing_tsyntax.dcm')}"
    _fails_without_cache_entry(image_id, loadstone.InvalidImageError, "Transfer Syntax")


@pytest.mark.parametrize(("suffix", "match"), [("?frame=0", "at least 1"), ("?frame=16", "past the end"),
                                               ("?frame=x", "whole number")])
def test_bad_frame_numbers(testdata: Callable[[str], str], suffix: str, match: str) -> None:
    image_id = f"dicomfile:{testdata('rtdose.dcm')}{suffix}"
    _fails_without_cache_entry(image_id, loadstone.InvalidImageError, match)


def test_frame_past_end_of_single_frame_file(testdata: Callable[[str], str]) -> None:
    _fails_without_cache_entry(f"dicomfile:{testdata('CT_small.dcm')}?frame=2", loadstone.InvalidImageError,
                               "past the end")


def test_pixel_cap(testdata: Callable[[str], str]) -> None:
    config.configure(max_pixel_bytes=10_000)
    _fails_without_cache_entry(f"dicomfile:{testdata('CT_small.dcm')}", loadstone.ResourceLimitError,
                               "max_pixel_bytes")


def test_pixel_cap_is_checked_before_pixels_are_allocated(tmp_path: Path) -> None:
    # A header claiming 60000 x 60000 x 1000 frames with 16 bytes of data.
    ds = synthetic.ct_dataset(0, 4, 4)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 60000, 60000, 1000
    ds.save_as(tmp_path / "bomb.dcm", enforce_file_format=True)
    _fails_without_cache_entry(f"dicomfile:{tmp_path / 'bomb.dcm'}", loadstone.ResourceLimitError)


def test_missing_file_and_no_path(tmp_path: Path) -> None:
    missing = f"dicomfile:{tmp_path / 'nope.dcm'}"
    _fails_without_cache_entry(missing, loadstone.InvalidImageError, "no such file")
    _fails_without_cache_entry("dicomfile:", loadstone.InvalidImageError, "names no file")
    _fails_without_cache_entry("dicomfile:9999", loadstone.InvalidImageError, "file manager")


def test_failures_leave_no_dataset_behind(tmp_path: Path) -> None:
    (tmp_path / "empty.dcm").write_bytes(b"")
    _fails_without_cache_entry(f"dicomfile:{tmp_path / 'empty.dcm'}", loadstone.InvalidImageError)
    assert len(dataset_cache) == 0


# -- series ------------------------------------------------------------------------------------
def test_series_is_ordered_along_the_normal(tmp_path: Path) -> None:
    paths = synthetic.write_series(tmp_path, 12, rows=16, columns=16)  # names shuffled, positions not
    (tmp_path / "notes.txt").write_text("not DICOM")
    ids = loadstone.series_image_ids(f"dicomfile:{tmp_path}")
    assert ids == [f"dicomfile:{path}" for path in paths]


def test_series_with_reversed_normal_and_instance_numbers(tmp_path: Path) -> None:
    study, series = generate_uid(), generate_uid()
    expected = []
    for index, z in enumerate([30.0, 20.0, 10.0]):
        ds = synthetic.ct_dataset(index, 8, 8, study_uid=study, series_uid=series)
        ds.ImageOrientationPatient = [1, 0, 0, 0, -1, 0]  # normal (0, 0, -1): higher z comes first
        ds.ImagePositionPatient = [0, 0, z]
        path = tmp_path / f"{9 - index}.dcm"
        ds.save_as(path, enforce_file_format=True)
        expected.append(f"dicomfile:{path}")
    assert loadstone.series_image_ids(f"dicomfile:{tmp_path}") == expected

    flat = tmp_path / "flat"
    flat.mkdir()
    flat_series = generate_uid()  # one series: a folder of several would be refused
    for number in (3, 1, 2):
        ds = synthetic.ct_dataset(number, 8, 8, series_uid=flat_series)
        del ds.ImagePositionPatient, ds.ImageOrientationPatient
        ds.InstanceNumber = number
        ds.save_as(flat / f"{number * 7 % 5}.dcm", enforce_file_format=True)
    numbers = [int(pydicom.dcmread(i.split(":", 1)[1]).InstanceNumber)
               for i in loadstone.series_image_ids(f"dicomfile:{flat}")]
    assert numbers == [1, 2, 3]


def test_series_of_multi_frame_files(tmp_path: Path, testdata: Callable[[str], str]) -> None:
    shutil.copy(testdata("rtdose.dcm"), tmp_path / "dose.dcm")
    ids = loadstone.series_image_ids(f"dicomfile:{tmp_path}")
    assert ids == [f"dicomfile:{tmp_path / 'dose.dcm'}?frame={n}" for n in range(1, 16)]
    assert loadstone.series_image_ids(f"dicomfile:{tmp_path / 'dose.dcm'}") == ids


def test_series_then_load_images(tmp_path: Path) -> None:
    synthetic.write_series(tmp_path, 10, rows=32, columns=32, transfer_syntax=JPEG2000Lossless)
    ids = loadstone.series_image_ids(f"dicomfile:{tmp_path}")
    images = [load.result(60) for load in loadstone.load_images(ids)]
    z = [loadstone.metadata.get("imagePlaneModule", image.image_id)["image_position_patient"][2]
         for image in images]
    assert z == sorted(z) and len(images) == 10


def test_series_errors(tmp_path: Path) -> None:
    with pytest.raises(loadstone.InvalidImageError, match="no such folder"):
        loadstone.series_image_ids(f"dicomfile:{tmp_path / 'missing'}")
    assert loadstone.series_image_ids(f"dicomfile:{tmp_path}") == []
    assert dicomfile.series_image_ids("wadors:http://x/studies/1/series/2") is None


# -- the contract -------------------------------------------------------------------------------
def _contract_files() -> dict[str, str]:
    folder = Path(__file__).parent
    del folder
    data = Path(pydicom.data.get_testdata_file("CT_small.dcm", download=False)).parent
    return {
        "ct": f"dicomfile:{data / 'CT_small.dcm'}",
        "rgb": f"dicomfile:{data / 'SC_rgb_rle_2frame.dcm'}?frame=2",
        "palette": f"dicomfile:{data / 'examples_palette.dcm'}",
        "j2k": f"dicomfile:{data / 'MR_small_jp2klossless.dcm'}",
        "mono1": f"dicomfile:{data / 'dicomdirtests' / '77654033' / 'CR1' / '6154'}",
        "truncated": f"dicomfile:{data / 'MR_truncated.dcm'}",
        "no_syntax": f"dicomfile:{data / 'meta_missing_tsyntax.dcm'}",
        "past_end": f"dicomfile:{data / 'rtdose.dcm'}?frame=99",
    }


class TestDicomFileContract(LoaderContract):
    """loadstone's conformance kit, through the registered ``dicomfile`` scheme."""

    files: ClassVar[dict[str, str]] = _contract_files()
    loader = "dicomfile"
    valid_ids: ClassVar[list[str]] = [files["ct"], files["rgb"], files["palette"], files["j2k"],
                                      files["mono1"]]
    invalid_ids: ClassVar[dict[str, type[BaseException]]] = {
        files["truncated"]: loadstone.InvalidImageError,
        files["no_syntax"]: loadstone.InvalidImageError,
        files["past_end"]: loadstone.InvalidImageError,
        "dicomfile:/no/such/file.dcm": loadstone.InvalidImageError,
    }


def test_warnings_are_not_errors(testdata: Callable[[str], str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = loadstone.load_image(f"dicomfile:{testdata('CT_small.dcm')}").result(30)
    assert image.rows == 128


def test_explicit_little_endian_synthetic(synthetic_files: Callable[..., list[Path]]) -> None:
    paths = synthetic_files(ExplicitVRLittleEndian, 3)
    for path in paths:
        image: Any = loadstone.load_image(f"dicomfile:{path}").result(30)
        assert np.array_equal(image.pixel_data, pydicom.dcmread(path).pixel_array)
