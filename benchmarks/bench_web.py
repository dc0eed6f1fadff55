"""loadstone-web against the plain ``requests`` + Pillow + numpy path, in one run.

    python benchmarks/bench_web.py [--images 200] [--size 512] [--runs 5] [--single 100]

200 JPEG and 200 PNG images of 512x512 RGB (photo-like: smooth colour and
noise, so they compress like photographs) are served from 127.0.0.1 by a
``ThreadingHTTPServer`` (HTTP/1.1, keep-alive, TCP_NODELAY) running in a
separate process, so the server's CPU work does not contend with the
client's GIL.  The same server serves every path.  Measured:

* **bulk**: ``loadstone.load_images(ids)`` and waiting for all (the request
  pool's PREFETCH concurrency, 8 by default; the cache is purged between
  runs so each run fetches and decodes everything) against a plain loop of
  ``requests.get(url)`` + ``PIL.Image.open`` + ``numpy.asarray``, and the same
  loop on one ``requests.Session`` (keep-alive: the stronger baseline).
  Every path keeps all its arrays until the run ends, as a caller of
  ``load_images`` does.  Goal: loadstone at least 1.5x faster.
* **single**: one ``loadstone.load_image(url).result()`` against one plain
  fetch + decode on a ``requests.Session``.  Goal: at most 1.15x its time.
* **decode only**: ``loadstone_web`` decode of bytes in memory against
  ``np.asarray(PIL.Image.open(BytesIO(data)))`` (the one-copy pixel path).

Warm-up runs first; runs are interleaved and medians printed with ratios.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


# -- the server (child process) -----------------------------------------------------------
def serve(folder: str, ready: Any, stop: Any) -> None:
    """Serve every file of ``folder`` from memory at ``/<name>`` until ``stop`` is set."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    files = {f"/{p.name}": p.read_bytes() for p in Path(folder).iterdir()}
    types = {".png": "image/png", ".jpg": "image/jpeg"}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", types[self.path[-4:]])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.timeout = 0.2
    ready.put(server.server_address[1])
    while not stop.is_set():
        server.handle_request()
    server.server_close()


# -- test images ------------------------------------------------------------------------------
def make_images(folder: Path, count: int, size: int) -> tuple[list[str], list[str]]:
    from PIL import Image as PILImage

    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    jpegs, pngs = [], []
    for i in range(count):
        phase = i * 0.37
        r = 127 + 90 * np.sin(x / (23.0 + i % 7) + phase)
        g = 127 + 90 * np.cos(y / (17.0 + i % 5) - phase)
        b = 255 * (x + y) / (2 * size)
        base = np.stack([r, g, b], axis=-1)
        noisy = base + rng.normal(0, 4, base.shape)
        image = PILImage.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        jpegs.append(f"/img{i:03d}.jpg")
        image.save(folder / jpegs[-1][1:], "JPEG", quality=90)
        pngs.append(f"/img{i:03d}.png")
        image.save(folder / pngs[-1][1:], "PNG")
    return jpegs, pngs


# -- the paths measured -------------------------------------------------------------------------
def plain_fetch_decode(get: Callable[[str], Any], url: str) -> np.ndarray:
    from PIL import Image as PILImage

    response = get(url)
    response.raise_for_status()
    return np.asarray(PILImage.open(io.BytesIO(response.content)))


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=200, help="images of each format")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5, help="bulk runs of each path")
    parser.add_argument("--single", type=int, default=100, help="single-image loads of each kind")
    args = parser.parse_args()

    import PIL
    import requests

    import loadstone
    import loadstone_web

    folder = Path(tempfile.mkdtemp(prefix="bench-web-"))
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    server = None
    try:
        started = time.perf_counter()
        jpegs, pngs = make_images(folder, args.images, args.size)
        jpeg_bytes = sum((folder / p[1:]).stat().st_size for p in jpegs)
        png_bytes = sum((folder / p[1:]).stat().st_size for p in pngs)
        made_s = time.perf_counter() - started
        server = ctx.Process(target=serve, args=(str(folder), ready, stop), daemon=True)
        server.start()
        port = ready.get(timeout=60)
        base = f"http://127.0.0.1:{port}"
        urls = [base + p for p in jpegs + pngs]

        print(f"loadstone-web benchmark: {len(jpegs)} JPEG ({jpeg_bytes / len(jpegs) / 1024:.0f} KiB avg) + "
              f"{len(pngs)} PNG ({png_bytes / len(pngs) / 1024:.0f} KiB avg), {args.size}x{args.size} RGB, "
              f"made in {made_s:.1f} s")
        print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
              f"Pillow {PIL.__version__}, numpy {np.__version__}, requests {requests.__version__}; "
              "server: ThreadingHTTPServer (HTTP/1.1 keep-alive) in its own process on 127.0.0.1")
        if hasattr(os, "getloadavg"):
            print(f"load average at start: {os.getloadavg()[0]:.2f} (other processes share these CPUs)")

        session = requests.Session()

        # Every path ends holding all the images (as a caller of load_images does), then lets them go.
        def plain_get() -> int:
            arrays = [plain_fetch_decode(requests.get, url) for url in urls]
            return sum(a.nbytes for a in arrays)

        def plain_session() -> int:
            arrays = [plain_fetch_decode(session.get, url) for url in urls]
            return sum(a.nbytes for a in arrays)

        def via_loadstone() -> int:
            loads = loadstone.load_images(urls)
            images = [load.result(120) for load in loads]
            loadstone.cache.purge()
            return sum(image.pixel_data.nbytes for image in images)

        # Same pixels both ways (a spot check on each format).
        for url in (urls[0], urls[-1]):
            pixels = loadstone.load_image(url).result(60).pixel_data
            assert np.array_equal(plain_fetch_decode(session.get, url), pixels), f"pixels differ for {url}"

        bulk: dict[str, Callable[[], int]] = {
            "requests.get loop": plain_get,
            "requests.Session loop": plain_session,
            "loadstone.load_images": via_loadstone,
        }
        expected = len(urls) * args.size * args.size * 3
        for fn in bulk.values():  # warm up: connections, imports, page cache
            assert fn() == expected
        times: dict[str, list[float]] = {name: [] for name in bulk}
        for _ in range(args.runs):
            for name, fn in bulk.items():
                t0 = time.perf_counter()
                assert fn() == expected
                times[name].append(time.perf_counter() - t0)

        print(f"\nbulk: {len(urls)} images, median of {args.runs} runs (interleaved)")
        ours = median_ms(times["loadstone.load_images"])
        for name, samples in times.items():
            ms = median_ms(samples)
            print(f"  {name:<24} {ms:8.1f} ms  {len(urls) / ms * 1000:7.1f} images/s  "
                  f"speed-up of loadstone = {ms / ours:.2f}x")
        for name in ("requests.get loop", "requests.Session loop"):
            ratio = median_ms(times[name]) / ours
            # Each run's ratio against the loadstone run right after it: drifts in background load cancel.
            paired = statistics.median(
                a / b for a, b in zip(times[name], times["loadstone.load_images"], strict=True)
            )
            print(f"  goal >= 1.5x vs {name}: {ratio:.2f}x (median of paired runs {paired:.2f}x) "
                  f"{'met' if ratio >= 1.5 else 'NOT met'}")

        # -- single image --------------------------------------------------------------------------
        print(f"\nsingle image: median of {args.single} loads each (interleaved, no cache)")
        for label, pick in (("JPEG", jpegs), ("PNG", pngs)):
            single_urls = [base + pick[i % len(pick)] for i in range(args.single)]
            plain_t: list[float] = []
            ours_t: list[float] = []
            for _ in range(5):  # warm up
                plain_fetch_decode(session.get, single_urls[0])
                loadstone.load_image(single_urls[0]).result(60)
            for url in single_urls:
                t0 = time.perf_counter()
                plain_fetch_decode(session.get, url)
                plain_t.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                loadstone.load_image(url).result(60)
                ours_t.append(time.perf_counter() - t0)
            ratio = median_ms(ours_t) / median_ms(plain_t)
            print(f"  {label:<5} requests.Session + Pillow + numpy {median_ms(plain_t):7.2f} ms   "
                  f"loadstone.load_image {median_ms(ours_t):7.2f} ms   ratio {ratio:.2f}x "
                  f"(goal <= 1.15x: {'met' if ratio <= 1.15 else 'NOT met'})")

        # -- decode only ------------------------------------------------------------------------------
        from PIL import Image as PILImage

        print("\ndecode only (bytes in memory, median of 50)")
        for label, path in (("JPEG", jpegs[0]), ("PNG", pngs[0])):
            data = (folder / path[1:]).read_bytes()
            plain_d: list[float] = []
            ours_d: list[float] = []
            for _ in range(50):
                t0 = time.perf_counter()
                np.asarray(PILImage.open(io.BytesIO(data)))
                plain_d.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                loadstone_web.decode_bytes(data)
                ours_d.append(time.perf_counter() - t0)
            ratio = median_ms(ours_d) / median_ms(plain_d)
            print(f"  {label:<5} np.asarray(Image.open) {median_ms(plain_d):6.2f} ms   "
                  f"loadstone_web decode {median_ms(ours_d):6.2f} ms   ratio {ratio:.2f}x")
        im = PILImage.open(io.BytesIO((folder / jpegs[0][1:]).read_bytes()))
        im.load()
        copy_plain = [0.0] * 50
        copy_ours = [0.0] * 50
        from loadstone_web._decode import pixels_of

        for i in range(50):
            t0 = time.perf_counter()
            np.asarray(im)
            copy_plain[i] = time.perf_counter() - t0
            t0 = time.perf_counter()
            pixels_of(im)
            copy_ours[i] = time.perf_counter() - t0
        print(f"  pixels out of Pillow ({args.size}x{args.size} RGB): "
              f"np.asarray {median_ms(copy_plain):.3f} ms (tobytes: chunks + join = 2 copies), "
              f"loadstone_web {median_ms(copy_ours):.3f} ms (1 copy)")
        session.close()
        if hasattr(os, "getloadavg"):
            print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    finally:
        stop.set()
        if server is not None:
            server.join(10)
            if server.is_alive():
                server.terminate()
                server.join(5)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
