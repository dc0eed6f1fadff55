"""``dicomfile:`` loading from disk against pydicom, in one run.

Writes a 200-slice 512x512 16-bit uncompressed CT series (generated with
pydicom) into a temporary folder, then times, as medians of repeated runs:

* pydicom: ``pydicom.dcmread(path).pixel_array`` for every file, in a loop;
* loadstone: ``loadstone.load_images(["dicomfile:…", …])`` and waiting for
  every image (image and dataset caches emptied before each run);
  goal: at most 0.8x pydicom's time;
* the per-frame decode alone: loadstone's numpy path against pydicom's
  native decoder (``Decoder.as_array``) on the same bytes.

Run: ``python benchmarks/bench_wado_files.py [--slices N] [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
from pydicom.pixels import get_decoder

import loadstone
from loadstone_wado.part10 import dataset_cache
from loadstone_wado.pixels import PixelDescription, decode_frame

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "wado"))
import synthetic  # the test data generator, kept with the tests


def median_times(funcs: list[Callable[[], Any]], runs: int) -> list[float]:
    """Median wall time of each function over ``runs`` runs, interleaved, after a warm-up run.

    Interleaving keeps a slow spell of this (shared, 2-core) machine from
    landing on one side of the comparison only.
    """
    samples: list[list[float]] = [[] for _ in funcs]
    for func in funcs:
        func()
    for _ in range(runs):
        for func, times in zip(funcs, samples, strict=True):
            started = time.perf_counter()
            func()
            times.append(time.perf_counter() - started)
    return [statistics.median(times) for times in samples]


def per_call_us(func: Callable[[], Any], calls: int = 500, batches: int = 15) -> float:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    with tempfile.TemporaryDirectory(prefix="loadstone-bench-files-") as folder:
        paths = synthetic.write_series(folder, args.slices)
        ids = loadstone.series_image_ids(f"dicomfile:{folder}")
        assert len(ids) == len(paths)

        def with_pydicom() -> None:
            for path in paths:
                pydicom.dcmread(path).pixel_array  # noqa: B018 - the decode is the point

        def with_loadstone() -> None:
            loadstone.cache.purge()
            dataset_cache.purge()
            for load in loadstone.load_images(ids):
                load.result(60)

        pydicom_s, loadstone_s = median_times([with_pydicom, with_loadstone], args.runs)

        ds = pydicom.dcmread(paths[0])
        description = PixelDescription.from_dataset(ds)
        uid = str(ds.file_meta.TransferSyntaxUID)
        frame = ds.PixelData
        decoder = get_decoder(uid)
        ours_us = per_call_us(lambda: decode_frame(frame, description, uid, image_id="bench"))
        theirs_us = per_call_us(lambda: decoder.as_array(ds, index=0))

    count = len(paths)
    print(f"loadstone-wado file benchmark: {count} slices 512x512 int16, Explicit VR Little Endian "
          f"(medians of {args.runs} runs)")
    print(f"  pydicom  dcmread(path).pixel_array loop:  {pydicom_s * 1e3:8.1f} ms  "
          f"({pydicom_s / count * 1e3:.3f} ms/slice)")
    print(f"  loadstone load_images(dicomfile:...):     {loadstone_s * 1e3:8.1f} ms  "
          f"({loadstone_s / count * 1e3:.3f} ms/slice)")
    print(f"  ratio loadstone / pydicom:                {loadstone_s / pydicom_s:8.2f}   (goal <= 0.80)")
    print(f"  frame decode, loadstone numpy path:       {ours_us:8.1f} us")
    print(f"  frame decode, pydicom Decoder.as_array:   {theirs_us:8.1f} us   "
          f"ratio {ours_us / theirs_us:.2f}")


if __name__ == "__main__":
    main()
