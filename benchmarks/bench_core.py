"""Core overheads, measured in one run against their baselines.

Prints medians of repeated batches (this machine is small and noisy):

* cache-hit latency of ``load_and_cache_image(id).result()`` (goal < 20 µs);
* dispatch overhead of ``load_image`` on a trivial loader against calling
  the loader function directly (goal <= 5 µs), and for a plain
  ``@image_loader`` function: ``load_image(id).result()`` (run on the waiting
  thread) against the same load handed to a worker thread;
* ``python -c "import loadstone"`` against ``python -c "import numpy"``
  (goal ratio <= 1.3), and the same with first use of ``loadstone.Image``;
* the first load of ``example://ct/0`` in a fresh process with every plugin
  installed against the same with the other plugins disabled (goal <= 1.2x),
  and the packages each plugin's first load imported.

Run: ``python benchmarks/bench_core.py``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

import loadstone
from loadstone import Image, ImageLoadObject


def per_call_us(func: Callable[[], Any], calls: int = 2000, batches: int = 31) -> float:
    """Median over batches of the mean time of one call, in microseconds."""
    for _ in range(calls // 10):
        func()
    samples = []
    for _ in range(batches):
        started = time.perf_counter()
        for _ in range(calls):
            func()
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(samples)


def command_ms(codes: list[str], runs: int = 25) -> list[float]:
    """Median wall time of each ``python -c code`` in ms, runs interleaved so drift hits all alike."""
    samples: list[list[float]] = [[] for _ in codes]
    for _ in range(runs):
        for index, code in enumerate(codes):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            samples[index].append((time.perf_counter() - started) * 1e3)
    return [statistics.median(values) for values in samples]


FIRST_LOAD = """
import sys, time
import loadstone
before = set(sys.modules)
started = time.perf_counter()
loadstone.load_image({image_id!r}).result(60)
elapsed = (time.perf_counter() - started) * 1e3
new = sorted({{name.split(".")[0] for name in set(sys.modules) - before}})
print(elapsed, ",".join(new))
"""


def first_load(image_id: str, disabled: str = "", runs: int = 15) -> tuple[float, list[str]]:
    """Median ms of the first ``load_image(image_id)`` in fresh processes, and the packages it imported."""
    env = dict(os.environ, LOADSTONE_DISABLE_PLUGINS=disabled)
    times, packages = [], []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", FIRST_LOAD.format(image_id=image_id)], env=env,
                              capture_output=True, text=True, check=True)
        elapsed, names = done.stdout.split()[-2:] if " " in done.stdout.strip() else (done.stdout, "")
        times.append(float(elapsed))
        packages = names.split(",") if names else []
    return statistics.median(times), packages


def first_loads() -> None:
    others = "wado,web,mpr"
    everything: list[float] = []
    alone: list[float] = []
    imported: list[str] = []
    for _ in range(3):  # interleaved, so drift hits both alike
        ms, imported = first_load("example://ct/0", runs=7)
        everything.append(ms)
        alone.append(first_load("example://ct/0", others, runs=7)[0])
    all_ms, alone_ms = statistics.median(everything), statistics.median(alone)
    print(f"  first load of example://ct/0, all plugins:   {all_ms:8.1f} ms")
    print(f"  the same, other plugins disabled:            {alone_ms:8.1f} ms"
          f"   ratio {all_ms / alone_ms:.2f} (goal <= 1.2)")
    print(f"  packages it imported: {', '.join(imported)}")
    ct = _pydicom_ct()
    for image_id in ([f"dicomfile:{ct}"] if ct else []) + ["mpr:axial;series=example://ct"]:
        _, imported = first_load(image_id, runs=1)
        print(f"  first load of {image_id.split(':')[0]}: imported {', '.join(imported)}")


def _pydicom_ct() -> str | None:
    try:
        from pydicom.data import get_testdata_file
    except ImportError:
        return None
    path = get_testdata_file("CT_small.dcm")
    return str(path) if path else None


def main() -> None:
    image = Image.from_array("bench:1", np.zeros((512, 512), dtype=np.int16))

    def trivial_loader(image_id: str, options: Mapping[str, Any]) -> ImageLoadObject:
        return ImageLoadObject.from_image(image)

    loadstone.register_image_loader("bench", trivial_loader)
    loadstone.load_and_cache_image("bench:1").result(10)

    def plain(image_id: str, options: Mapping[str, Any]) -> Image:
        return image

    loadstone.register_image_loader("fbench", loadstone.image_loader(plain))

    hit = per_call_us(lambda: loadstone.load_and_cache_image("bench:1").result())
    direct_runs, dispatched_runs = [], []
    for _ in range(3):  # interleaved
        direct_runs.append(per_call_us(lambda: trivial_loader("bench:2", {}).result()))
        dispatched_runs.append(per_call_us(lambda: loadstone.load_image("bench:2").result()))
    direct, dispatched = statistics.median(direct_runs), statistics.median(dispatched_runs)
    overhead = dispatched - direct
    inline = per_call_us(lambda: loadstone.load_image("fbench:2").result(), calls=500)
    handed = per_call_us(lambda: loadstone.load_image("fbench:2").result(60), calls=500)

    print("loadstone core benchmark (medians of batches)")
    print(f"  cache hit  load_and_cache_image(id).result(): {hit:8.2f} µs   (goal < 20 µs)")
    print(f"  loader called directly:                      {direct:8.2f} µs")
    print(f"  load_image(id).result() on the same loader:  {dispatched:8.2f} µs")
    print(f"  dispatch overhead:                           {overhead:8.2f} µs   (goal <= 5 µs)")
    print(f"  @image_loader function, result() (inline):   {inline:8.2f} µs")
    print(f"  the same handed to a worker, result(60):     {handed:8.2f} µs"
          f"   ({handed / inline:.1f}x the inline run)")

    bare, numpy_ms, loadstone_ms, first_use_ms = command_ms(
        ["pass", "import numpy", "import loadstone", "import loadstone; loadstone.Image; loadstone.cache"]
    )
    print(f"  python -c pass:                              {bare:8.1f} ms")
    print(f"  python -c 'import numpy':                    {numpy_ms:8.1f} ms")
    print(f"  python -c 'import loadstone':                {loadstone_ms:8.1f} ms"
          f"   ratio {loadstone_ms / numpy_ms:.2f} (goal <= 1.3)")
    print(f"  import loadstone + Image + cache (numpy in): {first_use_ms:8.1f} ms"
          f"   ratio {first_use_ms / numpy_ms:.2f}")
    first_loads()


if __name__ == "__main__":
    main()
