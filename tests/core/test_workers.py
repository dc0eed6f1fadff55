"""The worker threads behind ``image_loader``, seen from outside: each check runs in a fresh interpreter.

A fresh process has a fresh, empty worker pool, so thread counts and names
are exact; ``LOADSTONE_MAX_WORKERS`` sizes it.  Waits use ``result(timeout)``
so that no function runs inline on the waiting thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

PRELUDE = textwrap.dedent("""
    import json, sys, threading, time
    import numpy as np
    import loadstone

    def image(image_id):
        return loadstone.Image.from_array(image_id, np.zeros((2, 2), np.uint8))
""")


def run_script(body: str, workers: int | None = None, timeout: float = 60) -> Any:
    """Run PRELUDE + ``body`` in a fresh interpreter; returns the JSON it prints last."""
    env = dict(os.environ)
    env.pop("LOADSTONE_MAX_WORKERS", None)
    if workers is not None:
        env["LOADSTONE_MAX_WORKERS"] = str(workers)
    done = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body)], capture_output=True,
                          text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


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


def test_at_most_max_workers_run_at_once_and_idle_threads_are_reused() -> None:
    result = run_script("""
        lock = threading.Condition()
        running, peak, names = 0, 0, set()
        release = threading.Event()

        @loadstone.image_loader
        def held(image_id, options):
            global running, peak
            with lock:
                running += 1
                peak = max(peak, running)
                names.add(threading.current_thread().name)
                lock.notify_all()
            release.wait(10)
            with lock:
                running -= 1
            return image(image_id)

        loadstone.register_image_loader("held", held)
        loadstone.pool.set_max_concurrent(None, 16)
        loadstone.pool.set_max_concurrent("interaction", 16)
        loads = [loadstone.load_image(f"held:{n}") for n in range(10)]
        with lock:
            lock.wait_for(lambda: running == 3, 10)
        time.sleep(0.3)  # room for a fourth thread to start, if the pool were unbounded
        release.set()
        ok = all(load.result(10).image_id == f"held:{n}" for n, load in enumerate(loads))
        first = set(names)
        loadstone.load_image("held:again").result(10)
        print(json.dumps({"peak": peak, "ok": ok, "threads": sorted(first), "after": sorted(names),
                          "daemon": all(t.daemon for t in threading.enumerate()
                                        if t.name.startswith("loadstone-worker"))}))
    """, workers=3)
    assert result["peak"] == 3
    assert result["ok"]
    assert len(result["threads"]) == 3
    assert result["after"] == result["threads"]  # an idle thread took the next load
    assert result["daemon"]


def test_queued_work_is_cancelled_and_errors_do_not_kill_the_thread() -> None:
    result = run_script("""
        gate = threading.Event()
        calls = []

        @loadstone.image_loader
        def work(image_id, options):
            calls.append(image_id)
            if image_id == "w:gate":
                gate.wait(10)
            if image_id == "w:zero":
                1 / 0
            return image(image_id)

        loadstone.register_image_loader("w", work)
        first = loadstone.load_image("w:gate")
        queued = loadstone.load_image("w:queued")  # waits for the one worker thread
        cancelled = queued.cancel()
        failing = loadstone.load_image("w:zero")
        gate.set()
        first.result(10)
        error = failing.exception(10)
        after = loadstone.load_image("w:after").result(10)
        print(json.dumps({
            "cancelled": cancelled, "queued": type(queued.exception(10)).__name__,
            "error": type(error).__name__, "cause": type(error.__cause__).__name__,
            "calls": calls, "after": after.image_id,
            "threads": sorted(t.name for t in threading.enumerate() if t.name.startswith("loadstone-worker")),
        }))
    """, workers=1)
    assert result["cancelled"] is True
    assert result["queued"] == "LoadCancelledError"
    assert (result["error"], result["cause"]) == ("ImageLoadError", "ZeroDivisionError")
    assert result["calls"] == ["w:gate", "w:zero", "w:after"]  # the cancelled load never ran
    assert result["after"] == "w:after"
    assert result["threads"] == ["loadstone-worker-0"]


def test_a_chain_of_loads_stays_on_few_threads() -> None:
    """One prefetch slot: each load starts from the previous one's completion, on a warm thread."""
    result = run_script("""
        names = []

        @loadstone.image_loader
        def step(image_id, options):
            names.append(threading.current_thread().name)
            return image(image_id)

        loadstone.register_image_loader("chain", step)
        loadstone.pool.set_max_concurrent("prefetch", 1)
        loads = loadstone.load_images([f"chain:{n}" for n in range(20)])
        ok = all(load.result(10).image_id == f"chain:{n}" for n, load in enumerate(loads))
        print(json.dumps({"ok": ok, "names": sorted(set(names))}))
    """)
    assert result["ok"]
    # Two loads are in flight at most (one finishing, the next starting); a third thread
    # only on an unlucky schedule.
    assert len(result["names"]) <= 3, f"the chain hopped across threads: {result['names']}"
