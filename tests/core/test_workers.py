"""The daemon worker pool behind image_loader, and exit with a stuck loader function."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from loadstone._workers import DaemonThreadPool


def test_a_stuck_loader_function_does_not_hang_interpreter_exit() -> None:
    code = textwrap.dedent("""
        import time, loadstone
        @loadstone.image_loader
        def forever(image_id, options):
            time.sleep(3600)  # ignores cancellation: only exit can end it
        loadstone.register_image_loader("stuck", forever)
        try:
            loadstone.load_image("stuck:1", timeout=0.2).result(10)
        except loadstone.LoadTimeoutError:
            print("timed out")
    """)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "timed out"
    assert time.monotonic() - started < 20


def test_pool_runs_at_most_max_workers_at_once_and_reuses_idle_threads() -> None:
    pool = DaemonThreadPool(3, thread_name_prefix="test-pool")
    lock = threading.Lock()
    running = peak = 0
    release = threading.Event()

    def task(n: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(10)
        with lock:
            running -= 1
        return n * 2

    try:
        futures = [pool.submit(task, n) for n in range(10)]
        time.sleep(0.2)
        assert peak == 3
        release.set()
        assert [f.result(10) for f in futures] == [n * 2 for n in range(10)]
        assert len(pool._threads) == 3
        assert pool.submit(lambda: 1).result(10) == 1
        assert len(pool._threads) == 3  # an idle thread took it
    finally:
        release.set()
        pool.shutdown(wait=True)


def test_queued_work_can_be_cancelled_and_errors_travel_in_the_future() -> None:
    pool = DaemonThreadPool(1, thread_name_prefix="test-pool")
    gate = threading.Event()
    try:
        first = pool.submit(gate.wait, 10)
        queued = pool.submit(lambda: "never")
        assert queued.cancel()
        failing = pool.submit(lambda: 1 / 0)
        gate.set()
        assert first.result(10) is True
        with pytest.raises(ZeroDivisionError):
            failing.result(10)
        assert queued.cancelled()
    finally:
        gate.set()
        pool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)


def test_work_submitted_by_a_finishing_task_stays_on_its_warm_thread() -> None:
    pool = DaemonThreadPool(8, thread_name_prefix="test-pool")
    names: list[str] = []
    done = threading.Event()

    def step(remaining: int) -> None:
        names.append(threading.current_thread().name)
        if remaining:
            # As the request pool does: the next load is submitted from the done-callback.
            pool.submit(lambda: None).add_done_callback(lambda _: pool.submit(step, remaining - 1))
        else:
            done.set()

    try:
        pool.submit(step, 20)
        assert done.wait(10)
        # Two tasks are in flight at most; a third thread only on an unlucky schedule.
        assert len(set(names)) <= 3, f"the chain hopped across threads: {sorted(set(names))}"
    finally:
        pool.shutdown(wait=True)


def test_shutdown_ends_busy_and_idle_threads() -> None:
    pool = DaemonThreadPool(2, thread_name_prefix="test-pool")
    gate = threading.Event()
    busy = pool.submit(gate.wait, 10)
    pool.submit(lambda: None).result(10)  # one idle thread now
    threads = pool._threads
    stopper = threading.Thread(target=pool.shutdown)
    stopper.start()
    gate.set()
    stopper.join(10)
    assert busy.result(10) is True
    assert not stopper.is_alive()
    assert not any(thread.is_alive() for thread in threads)
