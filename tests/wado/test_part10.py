"""Part 10 parsing (typed errors, the fast parser) and the dataset cache."""

from __future__ import annotations

import io
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_files

import loadstone
from loadstone_wado import config
from loadstone_wado.part10 import DatasetCache, dataset_cache, dataset_key, dataset_nbytes, read_part10
from loadstone_wado.part10 import fast as _part10_fast

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


# -- read_part10 ---------------------------------------------------------------
def test_reads_paths_bytes_and_file_objects(testdata: Callable[[str], str]) -> None:
    path = testdata("CT_small.dcm")
    data = Path(path).read_bytes()
    for source in (path, Path(path), data, bytearray(data), memoryview(data), io.BytesIO(data)):
        ds = read_part10(source, image_id="x")
        assert int(ds.Rows) == 128
        assert str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.1"
        assert dataset_nbytes(ds) == len(data)


@pytest.mark.parametrize("mmap_files", [True, False])
def test_mapped_and_read_files_agree(testdata: Callable[[str], str], mmap_files: bool) -> None:
    config.configure(mmap_files=mmap_files)
    ds = read_part10(testdata("MR_small.dcm"))
    assert ds.pixel_array.tobytes() == pydicom.dcmread(testdata("MR_small.dcm")).pixel_array.tobytes()


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    with pytest.raises(loadstone.InvalidImageError, match="empty"):
        read_part10(empty)
    with pytest.raises(loadstone.InvalidImageError, match="empty"):
        read_part10(b"")


def test_png_named_dcm(tmp_path: Path) -> None:
    fake = tmp_path / "image.dcm"
    fake.write_bytes(PNG)
    with pytest.raises(loadstone.InvalidImageError, match=r"not a DICOM Part 10 file.*PNG"):
        read_part10(fake)


def test_missing_transfer_syntax(testdata: Callable[[str], str]) -> None:
    with pytest.raises(loadstone.InvalidImageError, match=r"\(0002,0010\) Transfer Syntax UID"):
        read_part10(testdata("meta_missing_tsyntax.dcm"))


@pytest.mark.parametrize("keep", [300, 2000, 20000])
def test_truncated_object_fails_at_load(testdata: Callable[[str], str], tmp_path: Path, keep: int) -> None:
    # A cut header parses as far as it goes (as pydicom does); the load then says what is missing.
    data = Path(testdata("CT_small.dcm")).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:keep])
    with pytest.raises(loadstone.InvalidImageError):
        loadstone.load_image(f"dicomfile:{path}").result(30)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(loadstone.InvalidImageError, match="no such file"):
        read_part10(tmp_path / "nope.dcm")
    with pytest.raises(loadstone.InvalidImageError, match="directory"):
        read_part10(tmp_path)


def test_file_size_cap(testdata: Callable[[str], str]) -> None:
    config.configure(max_file_bytes=1000)
    with pytest.raises(loadstone.ResourceLimitError, match="max_file_bytes"):
        read_part10(testdata("CT_small.dcm"))


def test_wrong_argument_type() -> None:
    with pytest.raises(TypeError):
        read_part10(12345)  # type: ignore[arg-type]


def test_meta_without_preamble_is_tolerated(testdata: Callable[[str], str]) -> None:
    data = Path(testdata("CT_small.dcm")).read_bytes()
    ds = read_part10(data[132:])  # file meta group first, no preamble and no 'DICM'
    assert int(ds.Rows) == 128


# -- the fast parser against pydicom ---------------------------------------------
def _all_files() -> list[str]:
    return [p for p in sorted(get_testdata_files()) if os.path.isfile(p)]


def test_fast_parser_builds_what_pydicom_builds() -> None:
    parsed = 0
    for path in _all_files():
        data = Path(path).read_bytes()
        fast = _part10_fast.parse(data, io.BytesIO(data), None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                reference = pydicom.dcmread(io.BytesIO(data), force=True)
            except Exception:
                continue
            if fast is None:
                continue
            parsed += 1
            ours = {element.tag: (element.VR, element.value) for element in fast.iterall()}
            theirs = {element.tag: (element.VR, element.value) for element in reference.iterall()}
        assert ours == theirs, path
        meta = {e.tag: e.value for e in fast.file_meta}
        assert meta == {e.tag: e.value for e in reference.file_meta}, path
        assert fast.original_encoding == reference.original_encoding, path
    assert parsed >= 100


def test_fast_parser_declines_what_it_does_not_handle(testdata: Callable[[str], str]) -> None:
    for name in ("MR_small_bigendian.dcm", "image_dfl.dcm"):
        data = Path(testdata(name)).read_bytes()
        assert _part10_fast.parse(data, io.BytesIO(data), None) is None, name
    data = Path(testdata("CT_small.dcm")).read_bytes()
    assert _part10_fast.parse(data[132:], io.BytesIO(data[132:]), None) is None  # no preamble
    assert _part10_fast.parse(data[:2000], io.BytesIO(data[:2000]), None) is None  # truncated


def test_deferred_pixel_data_is_a_view_of_the_source(synthetic_files: Callable[..., list[Path]]) -> None:
    import synthetic

    from loadstone_wado.pixels.frames import pixel_buffer

    buffer_io = io.BytesIO()
    synthetic.ct_dataset(0, 256, 256).save_as(buffer_io, enforce_file_format=True)  # 128 KiB of pixels
    data = buffer_io.getvalue()
    ds = read_part10(data)
    buffer = pixel_buffer(ds)
    assert isinstance(buffer, memoryview) and buffer.obj is data
    assert bytes(buffer) == ds.PixelData  # pydicom's own deferred read still works


# -- dataset cache ---------------------------------------------------------------
def _dataset(nbytes: int) -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.__dict__["_loadstone_nbytes"] = nbytes
    return ds


def test_cache_budget_and_lru() -> None:
    cache = DatasetCache(250)
    for key in "abc":
        cache.get_or_load(key, lambda: _dataset(100))
    assert cache.keys() == ["b", "c"]  # "a" evicted: 300 > 250
    cache.get("b")  # recently used now
    cache.get_or_load("d", lambda: _dataset(100))
    assert cache.keys() == ["b", "d"]
    info = cache.info()
    assert (info.maximum_size_bytes, info.cache_size_bytes, info.number_of_datasets_cached) == (250, 200, 2)
    cache.get_or_load("huge", lambda: _dataset(1000))
    assert "huge" not in cache, "a dataset above the whole budget is returned but not kept"
    cache.set_maximum_size_bytes(100)
    assert len(cache) == 1
    assert cache.remove("d") and not cache.remove("d")
    cache.purge()
    assert cache.info().cache_size_bytes == 0


def test_cache_follows_the_configured_budget() -> None:
    cache = DatasetCache()
    config.configure(dataset_cache_bytes=123)
    assert cache.maximum_size_bytes == 123


def test_failed_load_leaves_nothing_and_is_shared() -> None:
    cache = DatasetCache(10_000)
    started, release = threading.Event(), threading.Event()
    calls = []

    def load() -> pydicom.Dataset:
        calls.append(1)
        started.set()
        release.wait(5)
        raise loadstone.InvalidImageError("broken")

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            cache.get_or_load("k", load)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    threads[0].start()
    assert started.wait(5)
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.05)
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(calls) == 1, "concurrent callers share one load"
    assert len(errors) == 3 and all(isinstance(e, loadstone.InvalidImageError) for e in errors)
    assert "k" not in cache and len(cache) == 0


def test_cancelled_loader_does_not_fail_the_waiters() -> None:
    cache = DatasetCache(10_000)
    first_started, release = threading.Event(), threading.Event()
    results: list[object] = []

    def cancelled_load() -> pydicom.Dataset:
        first_started.set()
        release.wait(5)
        raise loadstone.LoadCancelledError("cancelled")

    def first() -> None:
        try:
            cache.get_or_load("k", cancelled_load)
        except loadstone.LoadCancelledError:
            results.append("cancelled")

    def second() -> None:
        results.append(cache.get_or_load("k", lambda: _dataset(10)))

    one, two = threading.Thread(target=first), threading.Thread(target=second)
    one.start()
    assert first_started.wait(5)
    two.start()
    time.sleep(0.05)
    release.set()
    one.join(5)
    two.join(5)
    assert "cancelled" in results
    assert any(isinstance(r, pydicom.Dataset) for r in results), "the waiter loaded it itself"
    assert "k" in cache


def test_dataset_key() -> None:
    assert dataset_key("wadouri:http://h/wado?a=1&frame=3&b=2") == "wadouri:http://h/wado?a=1&b=2"
    assert dataset_key("dicomweb:http://h/wado?frame=1") == "wadouri:http://h/wado"
    assert dataset_key("dicomfile:/a/b.dcm?frame=2") == "dicomfile:/a/b.dcm"
    assert dataset_key("example://ct/1") is None
    assert dataset_key("nocolon") is None


def test_shared_cache_is_used_by_dicomfile(testdata: Callable[[str], str]) -> None:
    path = testdata("rtdose.dcm")
    for frame in (1, 2, 3):
        loadstone.load_image(f"dicomfile:{path}?frame={frame}").result(30)
    assert f"dicomfile:{path}" in dataset_cache
    assert len(dataset_cache) == 1, "all frames share one parsed dataset"
