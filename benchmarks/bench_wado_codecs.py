"""Compressed-frame decoding: loadstone against the codecs themselves, in one run.

For every compressed transfer syntax an encoder here can produce (pydicom's
encoders and GDCM, run at start-up on synthetic 512x512 CT / 8-bit frames):

* each installed decoder through pydicom (``Decoder.as_array(ds,
  decoding_plugin=…)``): the measurement behind loadstone's decoder order;
* the fastest codec called *directly* on the frame bytes (``rle.decode_frame``,
  ``jpeg_ls.decode_buffer``, ``openjpeg.decode``, ``PIL.Image``; GDCM through
  pydicom's plugin, which is its only Python entry);
* ``loadstone_wado.pixels.decode_frame`` on the same bytes; goal: at most
  1.1x the direct codec call.

Then a 200-frame JPEG 2000 series loaded with ``loadstone.load_images``
(decode pool) against a sequential ``dcmread(path).pixel_array`` loop, goal
at least 1.7x faster on 2 cores, with the pool's worker count varied.

Run: ``python benchmarks/bench_wado_codecs.py [--frames N] [--series N] [--skip-series]``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.encaps import generate_frames
from pydicom.pixels import get_decoder
from pydicom.uid import (
    JPEG2000,
    UID,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

import loadstone
from loadstone_wado import config, decode_pool
from loadstone_wado.part10 import dataset_cache
from loadstone_wado.pixels import PixelDescription, decode_frame, decoder_order

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "wado"))
import synthetic  # the test data generator, kept with the tests

SYNTAXES = [RLELossless, JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, JPEGBaseline8Bit,
            JPEGLossless, JPEGLosslessSV1]


def _frames_dataset(uid: str, index: int) -> pydicom.Dataset:
    """One synthetic frame encoded in ``uid`` (8-bit for JPEG baseline)."""
    unsigned = uid == JPEGBaseline8Bit
    ds = synthetic.ct_dataset(index, unsigned=unsigned)
    if uid == JPEGBaseline8Bit:
        pixels = np.frombuffer(ds.PixelData, dtype=np.uint16) >> 4
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = pixels.astype(np.uint8).tobytes()
    encoded = synthetic.compress(ds, uid)
    return pydicom.dcmread(io.BytesIO(_to_bytes(encoded)))


def _to_bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _direct_codecs(uid: str, description: PixelDescription) -> dict[str, Callable[[bytes], Any]]:
    """The codec libraries' own entry points for ``uid`` (those installed)."""
    codecs: dict[str, Callable[[bytes], Any]] = {}
    pixels = description.rows * description.columns
    if uid == RLELossless:
        from rle import rle as rle_codec

        codecs["pylibjpeg-rle rle.decode_frame"] = lambda f: rle_codec.decode_frame(
            f, pixels, description.bits_allocated, "<")
    if uid in (JPEGLSLossless, JPEGLSNearLossless):
        import jpeg_ls

        codecs["pyjpegls jpeg_ls.decode_buffer"] = jpeg_ls.decode_buffer
    if uid in (JPEG2000Lossless, JPEG2000):
        import openjpeg

        codecs["openjpeg.decode"] = openjpeg.decode
    if uid in (JPEGBaseline8Bit, JPEG2000Lossless, JPEG2000):
        from PIL import Image

        codecs["PIL Image.open().tobytes()"] = lambda f: Image.open(io.BytesIO(f)).tobytes()
    return codecs


def interleaved_ms(candidates: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median time of each candidate over ``rounds`` rounds that run every candidate once.

    Interleaving spreads this shared machine's slow spells evenly over the
    candidates, so the comparison holds even when the absolute times wander.
    """
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for func in candidates.values():
        func()
    for _ in range(rounds):
        for name, func in candidates.items():
            started = time.perf_counter()
            func()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(times) * 1e3 for name, times in samples.items()}


def bench_syntax(uid: str, count: int, rounds: int) -> list[str]:
    """Lines of the per-syntax table."""
    datasets = [_frames_dataset(uid, index) for index in range(count)]
    frames = [next(generate_frames(ds.PixelData, number_of_frames=1)) for ds in datasets]
    description = PixelDescription.from_dataset(datasets[0])
    decoder = get_decoder(uid)
    lines = [f"{UID(uid).name} ({uid}), {count} frames "
             f"{description.rows}x{description.columns} {description.bits_stored}-bit, "
             f"{sum(map(len, frames)) / count / 1024:.0f} KiB each:"]

    def over(func: Callable[[Any], Any], items: list[Any]) -> Callable[[], None]:
        def run() -> None:
            for item in items:
                func(item)
        return run

    candidates: dict[str, Callable[[], None]] = {}
    for name in decoder.available_plugins:
        run = over(lambda ds, name=name: decoder.as_array(ds, index=0, decoding_plugin=name), datasets)
        try:
            run()
        except Exception as exc:  # a plugin that cannot do this kind of frame
            lines.append(f"    via pydicom {name:10s}  fails: {str(exc).splitlines()[-1][:70]}")
            continue
        candidates[f"pydicom:{name}"] = run
    for name, func in _direct_codecs(uid, description).items():
        candidates[f"direct:{name}"] = over(func, frames)
    order = decoder_order(uid, description)
    candidates["loadstone"] = over(lambda f: decode_frame(f, description, uid, image_id="bench"), frames)
    times = {name: ms / count for name, ms in interleaved_ms(candidates, rounds).items()}

    for name, ms in sorted(times.items(), key=lambda item: item[1]):
        if name.startswith("pydicom:"):
            lines.append(f"    via pydicom {name[8:]:10s}                     {ms:7.2f} ms/frame")
    direct = {name[7:]: ms for name, ms in times.items() if name.startswith("direct:")}
    # GDCM has no Python entry but through pydicom: its pydicom route counts as its direct call.
    name = min((n for n in times if n.startswith("pydicom:")), key=times.__getitem__)
    if not direct or times[name] < min(direct.values()):
        direct[f"{name[8:]} via pydicom"] = times[name]
    for name, ms in sorted(direct.items(), key=lambda item: item[1]):
        lines.append(f"    direct  {name:34s} {ms:7.2f} ms/frame")
    best_name, best = min(direct.items(), key=lambda item: item[1])
    ours = times["loadstone"]
    lines.append(f"    loadstone decode_frame (uses {order[0]})".ljust(47) + f"{ours:7.2f} ms/frame   "
                 f"ratio to fastest direct ({best_name}): {ours / best:.2f} (goal <= 1.10)")
    return lines


def bench_series(count: int, runs: int) -> list[str]:
    """The J2K series: load_images with the decode pool against a sequential pydicom loop."""
    lines = []
    with tempfile.TemporaryDirectory(prefix="loadstone-bench-j2k-") as folder:
        paths = synthetic.write_series(folder, count, transfer_syntax=JPEG2000Lossless)
        ids = [f"dicomfile:{path}" for path in paths]

        def sequential() -> None:
            for path in paths:
                pydicom.dcmread(path).pixel_array  # noqa: B018 - the decode is the point

        def sequential_one_thread() -> None:
            # The same loop with OpenJPEG: pydicom's default for J2K is GDCM, which decodes
            # each frame with several threads (it already uses both cores here).
            for path in paths:
                ds = pydicom.dcmread(path)
                ds.pixel_array_options(decoding_plugin="pylibjpeg")
                ds.pixel_array  # noqa: B018

        def with_loadstone() -> None:
            loadstone.cache.purge()
            dataset_cache.purge()
            for load in loadstone.load_images(ids):
                load.result(600)

        lines.append(f"JPEG 2000 lossless series, {count} frames 512x512 16-bit; per configuration, "
                     f"{runs} rounds of (pydicom loops, loadstone load_images) interleaved, medians:")
        for mode, workers in (("never", None), ("auto", 1), ("auto", 2), ("auto", 3)):
            previous = config.configure(decode_pool=mode, decode_workers=workers)
            try:
                decode_pool.shutdown()
                if mode != "never":
                    decode_pool.start(wait=True)
                with_loadstone()  # warm: the workers import their codecs
                triples = [(_timed(sequential), _timed(sequential_one_thread), _timed(with_loadstone))
                           for _ in range(runs)]
            finally:
                decode_pool.shutdown()
                config.restore(previous)
            baseline = statistics.median(triple[0] for triple in triples)
            single = statistics.median(triple[1] for triple in triples)
            elapsed = statistics.median(triple[2] for triple in triples)
            label = ("threads only (decode_pool='never')" if mode == "never"
                     else f"decode pool, {workers} worker(s)")
            goal = " (goal >= 1.7x)" if workers == 2 else ""
            lines.append(f"    {label:34s} loadstone {elapsed * 1e3:5.0f} ms | pydicom (gdcm) "
                         f"{baseline * 1e3:5.0f} ms: {baseline / elapsed:.2f}x{goal} | pydicom (openjpeg) "
                         f"{single * 1e3:5.0f} ms: {single / elapsed:.2f}x")
    return lines


def _timed(func: Callable[[], Any]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12, help="frames per syntax")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--series", type=int, default=200, help="frames of the JPEG 2000 series")
    parser.add_argument("--runs", type=int, default=3, help="runs of the series loads")
    parser.add_argument("--skip-series", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    print("loadstone-wado codec benchmark (medians; one process, this machine)")
    for uid in SYNTAXES:
        try:
            lines = bench_syntax(uid, args.frames, args.rounds)
        except Exception as exc:  # an encoder missing here
            lines = [f"{UID(uid).name}: skipped ({type(exc).__name__}: {exc})"]
        print("\n".join(lines), flush=True)
    print("HTJ2K (1.2.840.10008.1.2.4.201-203): skipped, no HTJ2K encoder is installed here")
    if not args.skip_series:
        print("\n".join(bench_series(args.series, args.runs)), flush=True)


if __name__ == "__main__":
    main()
