"""The process decode pool: same pixels as in-thread, typed errors, cancellation, clean shutdown."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import synthetic
from pydicom.encaps import generate_frames
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

import loadstone
from loadstone_wado import config
from loadstone_wado.pixels import PixelDescription, image_from_frame
from loadstone_wado.pixels import pool as decode_pool


def _frame(path: Path) -> tuple[bytes, PixelDescription, np.ndarray]:
    ds = pydicom.dcmread(path)
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    return frame, PixelDescription.from_dataset(ds), ds.pixel_array


@pytest.fixture(scope="module")
def big_j2k_frame(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, PixelDescription]:
    """A 2048x2048 JPEG 2000 frame: a decode long enough to cancel or kill in the middle."""
    ds = synthetic.ct_dataset(0, 2048, 2048)
    ds = synthetic.compress(ds, JPEG2000Lossless)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    ds = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    return next(generate_frames(ds.PixelData, number_of_frames=1)), PixelDescription.from_dataset(ds)


def _busy_worker(pool: decode_pool.DecodePool, timeout: float = 10.0) -> Any:
    """The worker that took a frame (waits until one has)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        free = [worker for worker, _ in list(pool._slots.queue)]
        busy = [worker for worker in list(pool._workers) if free.count(worker) < 2]
        if busy:
            return busy[0]
        time.sleep(0.005)
    raise AssertionError("no worker took the frame")


def _free_slots(pool: decode_pool.DecodePool, expected: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while pool._slots.qsize() < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return pool._slots.qsize()


@pytest.mark.parametrize("uid", [JPEGLSLossless, JPEG2000Lossless, RLELossless])
def test_pool_decodes_like_the_thread(uid: str, synthetic_files: Callable[..., list[Path]],
                                      decode_pool_started: decode_pool.DecodePool) -> None:
    frame, description, reference = _frame(synthetic_files(uid, 2)[0])
    image = image_from_frame("pooled", frame, description, uid)
    assert image.extra["decoder"].endswith("(pool)")
    assert np.array_equal(image.pixel_data, reference)
    assert image.min_pixel_value == float(reference.min())
    assert not image.pixel_data.flags.writeable
    loadstone.testing.check_image(image, "pooled")


def test_pool_errors_are_typed(synthetic_files: Callable[..., list[Path]],
                               decode_pool_started: decode_pool.DecodePool) -> None:
    _, description, _ = _frame(synthetic_files(JPEG2000Lossless, 1)[0])
    with pytest.raises(loadstone.InvalidImageError):
        image_from_frame("bad", b"\x00" * 64, description, JPEG2000Lossless)
    assert decode_pool_started.ready_workers == 2, "a codec error does not cost a worker"


def test_auto_rule() -> None:
    assert not decode_pool._wanted(JPEG2000Lossless, 1), "a lone frame decodes in its thread"
    assert decode_pool._wanted(JPEG2000Lossless, 2) and decode_pool._wanted(JPEGLSLossless, 3)
    assert not decode_pool._wanted(RLELossless, 5), "RLE is faster than the hop"
    config.configure(decode_pool="always")
    assert decode_pool._wanted(RLELossless, 1)
    config.configure(decode_pool="never")
    assert not decode_pool._wanted(JPEG2000Lossless, 8)


def test_series_uses_the_pool_when_frames_overlap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config.configure(decode_workers=2)
    decode_pool.shutdown()
    decode_pool.start(wait=True)
    # Another frame is decoding throughout (whether loads overlap by themselves depends on timing).
    monkeypatch.setattr(decode_pool, "_in_flight", decode_pool._in_flight + 1)
    try:
        paths = synthetic.write_series(tmp_path, 16, rows=128, columns=128, transfer_syntax=JPEG2000Lossless)
        images = [load.result(60) for load in loadstone.load_images([f"dicomfile:{p}" for p in paths])]
        for path, image in zip(paths, images, strict=True):
            assert np.array_equal(image.pixel_data, pydicom.dcmread(path).pixel_array)
        decoders = {image.extra["decoder"] for image in images}
        assert any(d.endswith("(pool)") for d in decoders), decoders
    finally:
        decode_pool.shutdown()


def test_never_keeps_decoding_in_thread(synthetic_files: Callable[..., list[Path]]) -> None:
    config.configure(decode_pool="never")
    paths = synthetic_files(JPEG2000Lossless, 4)
    images = [load.result(60) for load in loadstone.load_images([f"dicomfile:{p}" for p in paths])]
    assert not any(image.extra["decoder"].endswith("(pool)") for image in images)


def test_cancel_returns_at_once_and_the_slot_comes_back(
        big_j2k_frame: tuple[bytes, PixelDescription], synthetic_files: Callable[..., list[Path]],
        decode_pool_started: decode_pool.DecodePool) -> None:
    frame, description = big_j2k_frame
    pids = {w.process.pid for w in decode_pool_started._workers}

    @loadstone.image_loader
    def slow_decode(image_id: str, options: object) -> loadstone.Image:
        return image_from_frame(image_id, frame, description, JPEG2000Lossless)

    load = slow_decode("big", {})
    busy = _busy_worker(decode_pool_started)
    started = time.perf_counter()
    load.cancel()
    with pytest.raises(loadstone.LoadCancelledError):
        load.result(30)
    assert time.perf_counter() - started < 1, "a cancel does not wait for the codec"
    # The worker finishes the frame; its answer is dropped and the slot comes back.
    assert _free_slots(decode_pool_started, 4) == 4
    assert busy.process.poll() is None
    assert {w.process.pid for w in decode_pool_started._workers} == pids
    small, small_description, reference = _frame(synthetic_files(JPEG2000Lossless, 1)[0])
    image = image_from_frame("after", small, small_description, JPEG2000Lossless)
    assert np.array_equal(image.pixel_data, reference)


def test_a_worker_dying_mid_frame_fails_only_that_frame(
        big_j2k_frame: tuple[bytes, PixelDescription], synthetic_files: Callable[..., list[Path]],
        decode_pool_started: decode_pool.DecodePool) -> None:
    import threading

    frame, description = big_j2k_frame
    errors: list[BaseException] = []

    def decode() -> None:
        try:
            image_from_frame("dies", frame, description, JPEG2000Lossless)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=decode)
    thread.start()
    worker = _busy_worker(decode_pool_started)
    time.sleep(0.05)  # past the liveness check and the send: the worker is decoding (~0.3 s)
    worker.process.kill()
    thread.join(30)
    assert len(errors) == 1 and isinstance(errors[0], loadstone.InvalidImageError), errors
    assert "exited" in str(errors[0])
    small, small_description, reference = _frame(synthetic_files(JPEG2000Lossless, 1)[0])
    assert np.array_equal(image_from_frame("next", small, small_description, JPEG2000Lossless).pixel_data,
                          reference)


def test_an_idle_worker_that_died_is_replaced_transparently(
        synthetic_files: Callable[..., list[Path]], decode_pool_started: decode_pool.DecodePool) -> None:
    for worker in list(decode_pool_started._workers):
        worker.process.kill()
        worker.process.wait(5)
    # Until replacements start, frames decode in this thread; afterwards in the new workers.
    frame, description, reference = _frame(synthetic_files(JPEGLSLossless, 1)[0])
    image = image_from_frame("x", frame, description, JPEGLSLossless)
    assert np.array_equal(image.pixel_data, reference)
    deadline = time.monotonic() + 30
    while decode_pool_started.ready_workers < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    image = image_from_frame("y", frame, description, JPEGLSLossless)
    assert np.array_equal(image.pixel_data, reference) and image.extra["decoder"].endswith("(pool)")


def test_shutdown_leaves_no_process_and_no_shared_memory(synthetic_files: Callable[..., list[Path]]) -> None:
    config.configure(decode_pool="always", decode_workers=2)
    decode_pool.shutdown()
    pool = decode_pool.start(wait=True)
    frame, description, _ = _frame(synthetic_files(JPEG2000Lossless, 1)[0])
    image_from_frame("x", frame, description, JPEG2000Lossless)
    processes = [w.process for w in pool._workers]
    blocks = [b.name.lstrip("/") for w in pool._workers for b in w.blocks if b is not None]
    assert blocks and all(os.path.exists(f"/dev/shm/{name}") for name in blocks)
    decode_pool.shutdown()
    assert all(p.poll() is not None for p in processes)
    assert not [name for name in blocks if os.path.exists(f"/dev/shm/{name}")], "shared memory leaked"


def test_interpreter_exit_stops_the_pool(tmp_path: Path, synthetic_files: Callable[..., list[Path]]) -> None:
    path = synthetic_files(JPEG2000Lossless, 1)[0]
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import os
        from loadstone_wado import config, decode_pool
        from loadstone_wado.pixels import image_from_dataset
        import pydicom
        config.configure(decode_pool="always", decode_workers=2)
        pool = decode_pool.start(wait=True)
        image_from_dataset("x", pydicom.dcmread({str(path)!r}), 1)
        print(" ".join(str(w.process.pid) for w in pool._workers))
        print(" ".join(b.name.lstrip("/") for w in pool._workers for b in w.blocks if b is not None))
    """))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    pids_line, blocks_line = result.stdout.strip().splitlines()
    time.sleep(0.2)
    for pid in map(int, pids_line.split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for name in blocks_line.split():
        assert not os.path.exists(f"/dev/shm/{name}"), name
    assert "leaked" not in result.stderr, result.stderr
