"""loadstone-dask against what users write today, on one 2-worker LocalCluster, in one run.

A 400-slice 512x512 int16 CT series (the wado tests' synthetic one, generated
once with pydicom and kept in a temporary folder, see ``--cache``) is read from disk (``dicomfile:``) and
from a local Orthanc (``wadors:``; its database is kept in the same folder).
Timed, as medians of ``--repeats`` interleaved runs, graph building included:

* **loadstone-dask**: ``from_series(series_id).array.compute()`` on a
  ``LocalCluster`` of 2 worker processes;
* **the dask idiom** on the same cluster:
  ``da.stack([da.from_delayed(delayed(load)(x), shape, dtype) …]).compute()``,
  with ``pydicom.dcmread(path).pixel_array`` for files and, for WADO-RS,
  dicomweb-client's series metadata on the client and one
  ``retrieve_instance_frames`` + pydicom decoder per task (one cached
  ``DICOMwebClient`` per worker process);
* **local loadstone** in this process: ``load_images`` of the series' ids and
  ``np.stack`` (no dask);
* **a reduction**: ``map_images`` of each image's mean (only numbers travel)
  against ``from_series(…).array.mean().compute()``;
* ``from_series`` again through a second client with ``direct_to_workers=True``
  (chunks come from the workers, not through the scheduler), and for
  WADO-RS what the server alone gives (bare urllib3, 16 threads, no decode).

Every run starts cold for loadstone: each run of a file series reads its own
hard-linked copy of the folder (new paths, so no cache of the client or the
workers knows them; the OS page cache is warm for every variant alike), and
before each WADO-RS run the image caches and the WADO-RS metadata
(``loadstone_wado.metadata_manager``) are emptied on the client and the
workers.  Pixels are checked equal across variants.  Run when the machine is
quiet; the load average is printed with the figures::

    .venv/bin/python benchmarks/bench_dask.py [--repeats 5] [--slices 400]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # interleaved() of the WADO-RS benchmark
from bench_wado_rs import EXPLICIT_LE, interleaved, run_raw_floor, upload  # noqa: E402 - puts tests/wado on the path

# -- data, kept between runs -------------------------------------------------------------------


def series_folder(cache: Path, slices: int, size: int) -> Path:
    """The series as files (the wado tests' synthetic CT, names in no order), written once into ``cache``."""
    import synthetic

    folder = cache / f"ct-{slices}x{size}"
    done = folder / "order.json"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        paths = synthetic.write_series(folder, slices, rows=size, columns=size)
        done.write_text(json.dumps([path.name for path in paths]))  # slice order, for the idiom
    return folder


def slice_order(folder: Path) -> list[str]:
    """The file names of the series in slice order (what the idiom's user is assumed to know)."""
    return list(json.loads((folder / "order.json").read_text()))


def linked_copies(folder: Path, count: int) -> Iterator[Path]:
    """``count`` fresh hard-linked copies of ``folder`` (new paths, same inodes), made before timing."""
    root = Path(tempfile.mkdtemp(prefix="links-", dir=folder.parent))
    copies = []
    for n in range(count):
        copy = root / str(n)
        copy.mkdir()
        for path in sorted(folder.glob("*.dcm")):
            os.link(path, copy / path.name)
        copies.append(copy)
    return iter(copies)


def orthanc_series(cache: Path, folder: Path) -> tuple[Any, str, str]:
    """A running Orthanc holding the series (uploaded once; its database stays in ``cache``)."""
    import pydicom
    from orthanc import OrthancServer

    first = pydicom.dcmread(next(folder.glob("*.dcm")), stop_before_pixels=True)
    study, series = str(first.StudyInstanceUID), str(first.SeriesInstanceUID)
    server = OrthancServer(cache / "orthanc").start()
    try:
        stored = server.get_json(f"/dicom-web/studies/{study}/series/{series}/instances")
    except OSError:  # 404: not there yet
        stored = []
    if len(stored) != len(list(folder.glob("*.dcm"))):
        upload(server.url, [path.read_bytes() for path in sorted(folder.glob("*.dcm"))], {})
    return server, study, series


# -- what users write today ---------------------------------------------------------------------


def read_file(path: str) -> np.ndarray:
    """The files idiom's task: pydicom reads and decodes one file."""
    import pydicom

    return np.asarray(pydicom.dcmread(path).pixel_array)


def idiom_files(folder: Path, order: list[str], shape: tuple[int, int]) -> Any:
    import dask.array as da
    from dask import delayed

    paths = [str(folder / name) for name in order]
    parts = [da.from_delayed(delayed(read_file)(path), shape=shape, dtype=np.int16) for path in paths]
    return da.stack(parts)


@functools.lru_cache(maxsize=4)
def _dicomweb(url: str) -> Any:
    from dicomweb_client.api import DICOMwebClient

    return DICOMwebClient(url=url)


def read_frame(url: str, study: str, series: str, sop: str, description: dict[str, Any]) -> np.ndarray:
    """The WADO-RS idiom's task: dicomweb-client fetches frame 1, pydicom's decoder decodes it."""
    from pydicom.pixels import get_decoder

    frames = _dicomweb(url).retrieve_instance_frames(study, series, sop, frame_numbers=[1],
                                                    media_types=(("application/octet-stream", "*"),))
    array, _ = get_decoder(EXPLICIT_LE).as_array(bytes(frames[0]), **description)
    return np.asarray(array)


def idiom_wadors(url: str, study: str, series: str) -> Any:
    import dask.array as da
    from dask import delayed

    metadata = _dicomweb(url).retrieve_series_metadata(study, series)
    metadata.sort(key=lambda attrs: float(attrs["00200032"]["Value"][2]))  # slice order: along the normal

    def value(attrs: dict[str, Any], tag: str) -> Any:
        return attrs[tag]["Value"][0]

    parts = []
    for attrs in metadata:
        description = {
            "rows": value(attrs, "00280010"), "columns": value(attrs, "00280011"),
            "samples_per_pixel": value(attrs, "00280002"), "bits_allocated": value(attrs, "00280100"),
            "bits_stored": value(attrs, "00280101"), "pixel_representation": value(attrs, "00280103"),
            "photometric_interpretation": value(attrs, "00280004"), "number_of_frames": 1,
            "pixel_keyword": "PixelData",
        }
        task = delayed(read_frame)(url, study, series, value(attrs, "00080018"), description)
        shape = (description["rows"], description["columns"])
        parts.append(da.from_delayed(task, shape=shape, dtype=np.int16))
    return da.stack(parts)


# -- loadstone ---------------------------------------------------------------------------------------


def local_stack(series_id: str) -> np.ndarray:
    import loadstone

    loads = loadstone.load_images(loadstone.series_image_ids(series_id))
    stack = np.stack([load.result(300).pixel_data for load in loads])
    loadstone.cache.purge()
    return stack


def image_mean(image: Any) -> float:
    return float(image.pixel_data.mean())


def forget_wadors() -> None:
    """Cold loadstone caches for WADO-RS: images and metadata (run here and on every worker)."""
    import loadstone
    from loadstone_wado import metadata_manager

    loadstone.cache.purge()
    metadata_manager.purge()


def cold(client: Any, run: Callable[[], Any]) -> Callable[[], Any]:
    forget = importlib.import_module("bench_dask").forget_wadors

    def wrapped() -> Any:
        forget()
        client.run(forget)
        return run()

    return wrapped


# -- report ------------------------------------------------------------------------------------------


def report(title: str, medians: dict[str, float], slices: int, megabytes: float) -> None:
    print(f"\n{title}")
    for name, seconds in medians.items():
        print(f"  {name:52s} {seconds * 1000:8.0f} ms  {slices / seconds:7.1f} images/s  "
              f"{megabytes / seconds:7.1f} MiB/s")


def ratios(medians: dict[str, float], ours: str, idiom: str, local: str, mapped: str, reduced: str) -> None:
    print(f"  loadstone-dask is {medians[idiom] / medians[ours]:.2f}x faster than the dask idiom "
          "(goal >= 1.5x)")
    print(f"  dask overhead over local load_images + np.stack: {medians[ours] / medians[local]:.2f}x "
          "(goal <= 1.15x)")
    print(f"  mean of the series: map_images {medians[mapped] * 1000:.0f} ms, from_series().mean() "
          f"{medians[reduced] * 1000:.0f} ms ({medians[reduced] / medians[mapped]:.2f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=400)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "loadstone-bench-dask",
                        help="where the generated series and Orthanc's database are kept between runs")
    args = parser.parse_args()

    os.environ.setdefault("LOADSTONE_WADO_DATASET_CACHE_BYTES", "1")  # no parsed file outlives its load
    # The tasks' functions by their module's name, so that workers import them (with their caches)
    # rather than receive copies of this script's __main__.
    peers = importlib.import_module("bench_dask")
    import dask
    from distributed import Client, LocalCluster
    from orthanc import orthanc_missing

    import loadstone
    import loadstone_dask

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    args.cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    folder = series_folder(args.cache, args.slices, args.size)
    order = slice_order(folder)
    megabytes = args.slices * args.size * args.size * 2 / 2**20
    shape = (args.size, args.size)
    print(f"series: {args.slices} x {args.size}x{args.size} int16 CT, Explicit VR Little Endian, "
          f"{megabytes:.0f} MiB of pixels (ready in {time.perf_counter() - started:.1f} s, in {folder})")
    server = None
    with LocalCluster(n_workers=args.workers, processes=True, host="127.0.0.1", dashboard_address=":0",
                      silence_logs=40) as cluster, Client(cluster) as client, \
            Client(cluster, direct_to_workers=True, set_as_default=False) as direct:
        threads = sorted(set(client.nthreads().values()))
        print(f"cluster: LocalCluster, {args.workers} worker processes x {threads} threads; "
              f"dask {dask.__version__}")
        try:
            copies = linked_copies(folder, 6 * (args.repeats + 1))
            runs = {
                "loadstone-dask from_series().compute()":
                    lambda: loadstone_dask.from_series(f"dicomfile:{next(copies)}").array.compute(),
                "dask idiom: from_delayed(pydicom.dcmread)":
                    lambda: peers.idiom_files(next(copies), order, shape).compute(),
                "local loadstone load_images + np.stack":
                    lambda: local_stack(f"dicomfile:{next(copies)}"),
                "map_images(mean)":
                    lambda: loadstone_dask.map_images(peers.image_mean, loadstone.series_image_ids(
                        f"dicomfile:{next(copies)}")),
                "from_series().array.mean().compute()":
                    lambda: float(loadstone_dask.from_series(f"dicomfile:{next(copies)}").array.mean()
                                  .compute()),
                "from_series().compute(), Client(direct_to_workers=True)":
                    lambda: loadstone_dask.from_series(f"dicomfile:{next(copies)}").array.compute(
                        scheduler=direct),
            }
            interleaved(runs, 1)  # warm-up: imports, plugins on the workers, page cache
            medians, results = interleaved(runs, args.repeats)
            names = list(runs)
            same = np.array_equal(results[names[0]], results[names[2]]) and \
                np.array_equal(results[names[0]], results[names[1]]) and \
                np.array_equal(results[names[0]], results[names[5]])
            report(f"files (dicomfile:), median of {args.repeats} interleaved runs, graph building included:",
                   medians, args.slices, megabytes)
            ratios(medians, *names[:5])
            print(f"  identical pixels: {same}; means agree: "
                  f"{np.isclose(np.mean(results[names[3]]), results[names[4]])}")
            files_ours = medians[names[0]]
        finally:
            shutil.rmtree(next(iter(folder.parent.glob("links-*"))), ignore_errors=True)

        reason = orthanc_missing()
        if reason:
            print(f"\nWADO-RS skipped: {reason}")
        else:
            try:
                server, study, series = orthanc_series(args.cache, folder)
                url = f"{server.url}/dicom-web"
                series_id = f"wadors:{url}/studies/{study}/series/{series}"
                runs = {
                    "loadstone-dask from_series().compute()":
                        cold(client, lambda: loadstone_dask.from_series(series_id).array.compute()),
                    "dask idiom: dicomweb-client + pydicom":
                        cold(client, lambda: peers.idiom_wadors(url, study, series).compute()),
                    "local loadstone load_images + np.stack": cold(client, lambda: local_stack(series_id)),
                    "map_images(mean)": cold(client, lambda: loadstone_dask.map_images(
                        peers.image_mean, loadstone.series_image_ids(series_id))),
                    "from_series().array.mean().compute()": cold(
                        client, lambda: float(loadstone_dask.from_series(series_id).array.mean().compute())),
                    "from_series().compute(), Client(direct_to_workers=True)": cold(
                        client, lambda: loadstone_dask.from_series(series_id).array.compute(
                            scheduler=direct)),
                }
                interleaved(runs, 1)
                medians, results = interleaved(runs, args.repeats)
                names = list(runs)
                same = all(np.array_equal(results[names[0]], results[names[i]]) for i in (1, 2, 5))
                report(f"WADO-RS (wadors:, Orthanc {server.url}), median of {args.repeats} interleaved runs:",
                       medians, args.slices, megabytes)
                ratios(medians, *names[:5])
                print(f"  identical pixels: {same}")
                floor, _ = interleaved({"floor": lambda: run_raw_floor(url, study, series, 16)}, 3)
                print(f"  the server alone (bare urllib3, 16 threads, nothing decoded): "
                      f"{args.slices / floor['floor']:.0f} images/s")
                print(f"\nper worker: files {args.slices / files_ours / args.workers:.0f} images/s, "
                      f"WADO-RS {args.slices / medians[names[0]] / args.workers:.0f} images/s "
                      f"({args.workers} workers on {os.cpu_count()} CPUs, Orthanc on the same machine)")
            finally:
                if server is not None:
                    server.stop()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
