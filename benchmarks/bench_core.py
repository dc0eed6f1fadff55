"""Core overheads, measured in one run against their baselines.

Prints medians of repeated batches (this machine is small and noisy):

* cache-hit latency of ``load_and_cache_image(id).result()`` (goal < 20 µs);
* dispatch overhead of ``load_image`` on a trivial loader against calling
  the loader function directly (goal < 50 µs);
* ``python -c "import loadstone"`` against ``python -c "import numpy"``
  (goal ratio <= 1.3), and the same with first use of ``loadstone.Image``.

Run: ``python benchmarks/bench_core.py``.
"""

from __future__ import annotations

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


def main() -> None:
    image = Image.from_array("bench:1", np.zeros((512, 512), dtype=np.int16))

    def trivial_loader(image_id: str, options: Mapping[str, Any]) -> ImageLoadObject:
        return ImageLoadObject.from_image(image)

    loadstone.register_image_loader("bench", trivial_loader)
    loadstone.load_and_cache_image("bench:1").result(10)

    hit = per_call_us(lambda: loadstone.load_and_cache_image("bench:1").result())
    direct = per_call_us(lambda: trivial_loader("bench:2", {}).result())
    dispatched = per_call_us(lambda: loadstone.load_image("bench:2").result())
    overhead = dispatched - direct

    print("loadstone core benchmark (medians of batches)")
    print(f"  cache hit  load_and_cache_image(id).result(): {hit:8.2f} µs   (goal < 20 µs)")
    print(f"  loader called directly:                      {direct:8.2f} µs")
    print(f"  load_image(id).result() on the same loader:  {dispatched:8.2f} µs")
    print(f"  dispatch overhead:                           {overhead:8.2f} µs   (goal < 50 µs)")

    bare, numpy_ms, loadstone_ms, first_use_ms = command_ms(
        ["pass", "import numpy", "import loadstone", "import loadstone; loadstone.Image; loadstone.cache"]
    )
    print(f"  python -c pass:                              {bare:8.1f} ms")
    print(f"  python -c 'import numpy':                    {numpy_ms:8.1f} ms")
    print(f"  python -c 'import loadstone':                {loadstone_ms:8.1f} ms"
          f"   ratio {loadstone_ms / numpy_ms:.2f} (goal <= 1.3)")
    print(f"  import loadstone + Image + cache (numpy in): {first_use_ms:8.1f} ms"
          f"   ratio {first_use_ms / numpy_ms:.2f}")


if __name__ == "__main__":
    main()
