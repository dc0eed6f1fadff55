"""WADO-RS series loading: loadstone against dicomweb-client + pydicom, in one run.

Generates a 200-slice 512x512 uncompressed CT series with pydicom, stores it
in a freshly started Orthanc (with its DICOMweb plugin; see
``tests/wado/orthanc.py``) or in the DICOMweb server given by ``--url``, and
times, as medians over ``--repeats`` runs:

* **loadstone**: ``loadstone.series_image_ids`` (one series ``/metadata``
  request, ordered in space) then ``loadstone.load_images`` of every id and
  waiting for all images (cache and metadata manager emptied before each run);
* **dicomweb-client**: ``retrieve_series_metadata`` then, in a loop,
  ``retrieve_instance_frames`` of each frame and pydicom's decoder on it —
  what a Python user writes today.

Both produce the same int16 arrays (checked).  A second table measures frame
batching on one multi-frame instance (``--frames`` frames): one request per
frame against the batched fetcher with 1, 2 and 4 requests in flight per
instance.  Run::

    .venv/bin/python benchmarks/bench_wado_rs.py [--slices 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "wado"))  # the Orthanc helper used by the tests

EXPLICIT_LE = "1.2.840.10008.1.2.1"


# -- data -----------------------------------------------------------------------------------


def ct_series(slices: int, size: int, frames: int = 1) -> tuple[str, str, list[bytes]]:
    """Part 10 bytes of a CT series (or one multi-frame instance when ``frames`` > 1)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:size, :size]
    body = ((xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size * 0.45) ** 2).astype(np.int16)
    study, series = generate_uid(), generate_uid()
    out = []
    for index in range(slices):
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        uid = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientID, ds.PatientName, ds.Modality = "BENCH", "Bench^WadoRS", "CT"
        ds.InstanceNumber = index + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-200.0, -200.0, -1.25 * index]  # uploaded head to foot
        ds.PixelSpacing, ds.SliceThickness = [0.78, 0.78], 1.25
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.WindowCenter, ds.WindowWidth = 40, 400
        if frames > 1:
            ds.NumberOfFrames = frames
        stack = [(body * (1000 + 3 * (index + f)) + rng.integers(0, 40, body.shape)).astype(np.int16)
                 for f in range(frames)]
        ds.PixelData = np.stack(stack).tobytes()
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return study, series, out


def upload(base: str, objects: list[bytes], headers: dict[str, str]) -> None:
    for data in objects:
        request = urllib.request.Request(f"{base}/instances", data=data, method="POST")
        request.add_header("Content-Type", "application/dicom")
        for name, value in headers.items():
            request.add_header(name, value)
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()


# -- the two clients --------------------------------------------------------------------------


def run_loadstone(dicomweb: str, study: str, series: str) -> list[np.ndarray]:
    import loadstone
    from loadstone_wado import metadata_manager

    loadstone.cache.purge()
    metadata_manager.purge()
    ids = loadstone.series_image_ids(f"wadors:{dicomweb}/studies/{study}/series/{series}")
    return [load.result(120).pixel_data for load in loadstone.load_images(ids)]


def run_loadstone_wider(dicomweb: str, study: str, series: str, concurrency: int) -> list[np.ndarray]:
    """:func:`run_loadstone` with the request pool's prefetch concurrency raised."""
    import loadstone

    previous = loadstone.pool.get_max_concurrent("prefetch")
    loadstone.pool.set_max_concurrent("prefetch", concurrency)
    try:
        return run_loadstone(dicomweb, study, series)
    finally:
        loadstone.pool.set_max_concurrent("prefetch", previous)


def run_dicomweb_client(dicomweb: str, study: str, series: str) -> list[np.ndarray]:
    from dicomweb_client.api import DICOMwebClient
    from pydicom.pixels import get_decoder

    client = DICOMwebClient(url=dicomweb)
    decoder = get_decoder(EXPLICIT_LE)
    metadata = client.retrieve_series_metadata(study, series)

    def value(attrs: dict[str, Any], tag: str) -> Any:
        return attrs[tag]["Value"][0]

    metadata.sort(key=lambda attrs: float(attrs["00200032"]["Value"][2]))  # same order: along the normal
    images = []
    for attrs in metadata:
        frames = client.retrieve_instance_frames(
            study, series, value(attrs, "00080018"), frame_numbers=[1],
            media_types=(("application/octet-stream", "*"),))
        description: dict[str, Any] = {
            "rows": value(attrs, "00280010"), "columns": value(attrs, "00280011"),
            "samples_per_pixel": value(attrs, "00280002"), "bits_allocated": value(attrs, "00280100"),
            "bits_stored": value(attrs, "00280101"), "pixel_representation": value(attrs, "00280103"),
            "photometric_interpretation": value(attrs, "00280004"), "number_of_frames": 1,
            "pixel_keyword": "PixelData",
        }
        array, _ = decoder.as_array(bytes(frames[0]), **description)
        images.append(array)
    client._session.close()  # its pooled connections; dicomweb-client has no public close
    return images


def median_time(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def interleaved(runs: dict[str, Callable[[], Any]], repeats: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Median seconds of each run, the runs taking turns (so drift on a busy machine hits all alike)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, Any] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            results[name] = run()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}, results


def run_raw_floor(dicomweb: str, study: str, series: str, threads: int) -> None:
    """What the server alone costs: every frame fetched with bare urllib3, nothing decoded."""
    import concurrent.futures
    import json

    import urllib3

    manager = urllib3.PoolManager(maxsize=threads)
    base = f"{dicomweb}/studies/{study}/series/{series}"
    metadata = json.loads(manager.request("GET", f"{base}/metadata").data)
    urls = [f"{base}/instances/{attrs['00080018']['Value'][0]}/frames/1" for attrs in metadata]
    accept = {"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda url: manager.request("GET", url, headers=accept).data, urls))
    manager.clear()


# -- batching ---------------------------------------------------------------------------------


def batching_table(dicomweb: str, study: str, series: str, sop: str, frames: int, repeats: int) -> None:
    import loadstone
    from loadstone_wado import metadata_manager, wadors

    ids = [f"wadors:{dicomweb}/studies/{study}/series/{series}/instances/{sop}/frames/{n}"
           for n in range(1, frames + 1)]
    loadstone.load_image(ids[0]).result(120)  # metadata registered, connections warm
    variants: list[tuple[str, dict[str, Any]]] = [
        ("one request per frame", {"enabled": False}),
        ("batched, 4 in flight", {"enabled": True, "max_requests_per_instance": 4, "read_ahead": 0}),
        ("batched, 2 in flight", {"enabled": True, "max_requests_per_instance": 2, "read_ahead": 0}),
        ("batched, 1 in flight", {"enabled": True, "max_requests_per_instance": 1, "read_ahead": 0}),
        ("batched, 1 in flight + read-ahead 32 (default)",
         {"enabled": True, "max_requests_per_instance": 1, "read_ahead": 32}),
    ]
    print(f"\nbatching: {frames} frames of one {frames * 512 * 512 * 2 / 2**20:.0f} MiB instance, "
          f"load_images (stats of the last run), median of {repeats}")
    baseline = None
    for name, setting in variants:
        wadors.configure_batching(**setting)

        def run() -> None:
            loadstone.cache.purge()
            wadors.frame_stats.reset()
            for load in loadstone.load_images(ids):
                load.result(120)

        seconds, _ = median_time(run, repeats)
        baseline = baseline or seconds
        stats = wadors.frame_stats
        print(f"  {name:48s} {seconds * 1000:7.0f} ms  {frames / seconds:6.1f} frames/s  "
              f"{stats.requests:4d} requests ({stats.frames / max(1, stats.requests):4.1f} frames each)  "
              f"x{baseline / seconds:.2f}")
    wadors.configure_batching(enabled=True, max_requests_per_instance=1, read_ahead=32)
    metadata_manager.purge()


# -- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=100, help="frames of the batching instance (0: skip)")
    parser.add_argument("--url", help="an existing server's base URL (with /instances and /dicom-web)")
    args = parser.parse_args()

    import loadstone

    server = None
    workdir = tempfile.TemporaryDirectory(prefix="bench-wado-rs-")
    try:
        if args.url:
            base = args.url.rstrip("/")
        else:
            from orthanc import OrthancServer, orthanc_missing

            reason = orthanc_missing()
            if reason:
                print(f"cannot run: {reason}", file=sys.stderr)
                return 2
            server = OrthancServer(Path(workdir.name)).start()
            base = server.url
        dicomweb = f"{base}/dicom-web"
        started = time.perf_counter()
        study, series, objects = ct_series(args.slices, args.size)
        upload(base, objects, {})
        megabytes = args.slices * args.size * args.size * 2 / 2**20
        stored_in = time.perf_counter() - started
        print(f"series: {args.slices} x {args.size}x{args.size} int16 CT, Explicit VR Little Endian, "
              f"{megabytes:.0f} MiB of pixels (generated and stored in {stored_in:.1f} s)")
        print(f"machine: {os.cpu_count()} CPUs; loadstone pool: prefetch "
              f"{loadstone.pool.get_max_concurrent('prefetch')} at once; server: {base}")

        runs = {
            "loadstone load_images": lambda: run_loadstone(dicomweb, study, series),
            "loadstone, pool prefetch 16 at once": lambda: run_loadstone_wider(dicomweb, study, series, 16),
            "dicomweb-client + pydicom loop": lambda: run_dicomweb_client(dicomweb, study, series),
            "server floor, 1 thread (no decode)": lambda: run_raw_floor(dicomweb, study, series, 1),
            "server floor, 16 threads (no decode)": lambda: run_raw_floor(dicomweb, study, series, 16),
        }
        interleaved(runs, 1)  # warm-up: imports, connections, server caches
        medians, results = interleaved(runs, args.repeats)
        images, reference = results["loadstone load_images"], results["dicomweb-client + pydicom loop"]
        same = len(images) == len(reference) and all(
            np.array_equal(a, b) for a, b in zip(images, reference, strict=True))
        print(f"\nWADO-RS series, median of {args.repeats} interleaved runs (metadata + every frame):")
        for name, seconds in medians.items():
            print(f"  {name:38s} {seconds * 1000:8.0f} ms  {args.slices / seconds:7.1f} images/s  "
                  f"{megabytes / seconds:7.1f} MiB/s")
        ours, theirs = medians["loadstone load_images"], medians["dicomweb-client + pydicom loop"]
        floor = medians["server floor, 16 threads (no decode)"]
        print(f"  ratio: loadstone is {theirs / ours:.2f}x faster than dicomweb-client (goal: >= 3x); "
              f"the server alone allows at most {theirs / floor:.2f}x here; identical pixels: {same}")

        if args.frames > 0:
            mf_study, mf_series, mf = ct_series(1, 512, frames=args.frames)
            upload(base, mf, {})
            import pydicom

            sop = str(pydicom.dcmread(io.BytesIO(mf[0]), stop_before_pixels=True).SOPInstanceUID)
            batching_table(dicomweb, mf_study, mf_series, sop, args.frames, max(3, args.repeats // 2))
        return 0 if same else 1
    finally:
        loadstone.cancel_load_all()
        if server is not None:
            server.stop()
        workdir.cleanup()


if __name__ == "__main__":
    sys.exit(main())
