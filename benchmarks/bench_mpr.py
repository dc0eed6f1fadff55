"""MPR against its peers, in one run, on a 512 x 512 x 400 int16 volume (0.7 x 0.7 x 1.0 mm).

Prints medians of interleaved rounds (this machine is small and noisy):

* a 512 x 512 oblique plane, linear interpolation: loadstone-mpr's engine against
  SimpleITK's ResampleImageFilter and ``scipy.ndimage.map_coordinates(order=1)``
  on the same plane (goal: at most 1.0x SimpleITK's time), and the whole
  ``load_image("mpr:…").result()`` with the volume cached;
* axial, sagittal and coronal planes on the voxel grid against a numpy copy of
  the same plane (goal: at most 3x);
* a 10 mm MIP slab (512 x 512), against SimpleITK resampling the slab and taking
  its MaximumProjection;
* building the volume from 400 cached images against ``numpy.stack`` of the
  same arrays (goal: at most 2x);
* the numba JIT: first plane in a fresh process with an empty and a warm disk cache.

Run: ``python benchmarks/bench_mpr.py`` (needs SimpleITK and scipy for the peers:
``pip install SimpleITK scipy``; missing peers are reported and skipped).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

import loadstone
import loadstone_mpr
from loadstone_mpr import _reslice
from loadstone_mpr._geometry import plane_grid
from loadstone_mpr._grammar import parse_mpr_id

SHAPE = (400, 512, 512)  # slices, rows, columns
PIXEL_SPACING = (0.7, 0.7)  # between rows, between columns
SLICE_SPACING = 1.0
ORIGIN = (-179.0, -179.0, -200.0)
OBLIQUE_KEYS = "normal=0.3,0.2,0.93;up=0,-1,0;size=512x512;spacing=0.7"


def warm_memory() -> None:
    """Touch 1 GiB once, so that no measurement pays this VM's first use of fresh memory.

    Each 200 MB array (the volume, numpy.stack's result) is a fresh mmap that
    page-faults as it fills, on both sides of the comparison alike; what must
    not decide the race is who first touches memory the VM never used (the very
    first numpy.stack took 440 ms here, the next 12 ms).
    """
    block = np.ones(1 << 30, dtype=np.uint8)
    del block


def make_volume() -> np.ndarray:
    """A smooth body-like phantom in HU-ish int16 with a little noise (content does not change timing)."""
    rng = np.random.default_rng(0)
    k, j, i = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    body = ((i - 256) / 220.0) ** 2 + ((j - 256) / 170.0) ** 2 < 1.0
    volume = np.empty(SHAPE, dtype=np.int16)
    volume[...] = np.where(body, 40, -1000)
    volume += (np.sin(k / 17.0) * 60).astype(np.int16)
    volume += rng.integers(-20, 20, size=SHAPE[1:], dtype=np.int16)
    return volume


def register(volume: np.ndarray) -> tuple[str, list[str]]:
    """Serve the slices from memory on scheme ``benchmpr`` with scanner-like metadata."""
    ids = [f"benchmpr://s/{k}" for k in range(SHAPE[0])]

    @loadstone.image_loader
    def load(image_id: str, options: Mapping[str, Any]) -> loadstone.Image:
        k = int(image_id.rsplit("/", 1)[1])
        return loadstone.Image.from_array(image_id, volume[k], intercept=-1024.0, window_center=40.0,
                                          window_width=400.0, row_pixel_spacing=PIXEL_SPACING[0],
                                          column_pixel_spacing=PIXEL_SPACING[1])

    def provider(module: str, image_id: str) -> Any:
        if not image_id.startswith("benchmpr://s/"):
            return None
        k = int(image_id.rsplit("/", 1)[1])
        if module == "imagePlaneModule":
            return {"image_position_patient": [ORIGIN[0], ORIGIN[1], ORIGIN[2] + k * SLICE_SPACING],
                    "image_orientation_patient": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                    "pixel_spacing": list(PIXEL_SPACING), "rows": SHAPE[1], "columns": SHAPE[2],
                    "frame_of_reference_uid": "1.2.3"}
        if module == "imagePixelModule":
            return {"rows": SHAPE[1], "columns": SHAPE[2], "bits_allocated": 16, "pixel_representation": 1}
        if module == "modalityLutModule":
            return {"rescale_slope": 1.0, "rescale_intercept": -1024.0}
        return None

    loadstone.register_image_loader("benchmpr", load)
    loadstone.metadata.add_provider(provider)
    loadstone_mpr.create_volume("bench", ids)
    return "bench", ids


def median_ms(funcs: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median milliseconds of each function, run interleaved round by round after a warm-up."""
    for func in funcs.values():
        func()
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(rounds):
        for name, func in funcs.items():
            started = time.perf_counter()
            func()
            samples[name].append((time.perf_counter() - started) * 1e3)
    return {name: statistics.median(values) for name, values in samples.items()}


def sitk_peer(volume: np.ndarray) -> Any:
    """The volume as a SimpleITK image placed exactly as loadstone-mpr places it, or None."""
    try:
        import SimpleITK as sitk  # noqa: N813 - its usual name
    except ImportError:
        print("  (SimpleITK not installed: pip install SimpleITK)")
        return None
    image = sitk.GetImageFromArray(volume)  # index (i, j, k): the same as the affine's
    image.SetSpacing((PIXEL_SPACING[1], PIXEL_SPACING[0], SLICE_SPACING))
    image.SetOrigin(ORIGIN)
    image.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
    return image


def sitk_resample(image: Any, grid: Any, fill: float, depth_offsets: np.ndarray | None = None) -> np.ndarray:
    """SimpleITK's linear resample onto a plane grid (or a slab of planes), as float32."""
    import SimpleITK as sitk  # noqa: N813

    direction = np.stack([grid.row_cosines, grid.column_cosines, grid.normal], axis=1)
    origin = grid.origin.copy()
    depth, step = 1, 1.0
    if depth_offsets is not None:
        depth = len(depth_offsets)
        step = float(depth_offsets[1] - depth_offsets[0])
        origin = origin + depth_offsets[0] * grid.normal
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize((grid.columns, grid.rows, depth))
    resampler.SetOutputOrigin(tuple(float(v) for v in origin))
    resampler.SetOutputSpacing((grid.column_spacing, grid.row_spacing, step))
    resampler.SetOutputDirection(tuple(float(v) for v in direction.ravel()))
    resampler.SetInterpolator(sitk.sitkLinear)
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    resampler.SetDefaultPixelValue(fill)
    out = resampler.Execute(image)
    if depth_offsets is not None:
        out = sitk.MaximumProjection(out, 2)
    return sitk.GetArrayFromImage(out)[0]


def jit_cost() -> tuple[float, float, float]:
    """Seconds to the first oblique plane in a fresh process.

    With engine "numba": empty disk cache, then warm; and with the default
    engine "auto", which computes a process's first small planes by numpy.
    """
    code = textwrap.dedent("""
        import time, numpy as np, loadstone, loadstone_mpr
        vol = np.zeros((40, 64, 64), np.int16)
        ids = [f"jit://s/{k}" for k in range(40)]
        loadstone.register_image_loader("jit", loadstone.image_loader(
            lambda i, o: loadstone.Image.from_array(i, vol[int(i.rsplit('/', 1)[1])])))
        loadstone.metadata.add_provider(lambda m, i: {
            "image_position_patient": [0, 0, float(i.rsplit('/', 1)[1])],
            "image_orientation_patient": [1, 0, 0, 0, 1, 0], "pixel_spacing": [1, 1], "rows": 64,
            "columns": 64} if m == "imagePlaneModule" and i.startswith("jit:") else None)
        loadstone_mpr.create_volume("jit", ids)
        loadstone_mpr.get_volume("jit")
        started = time.perf_counter()
        loadstone.load_image("mpr:oblique;normal=0.3,0.2,0.9;volume=jit").result(120)
        print(time.perf_counter() - started)
    """)

    def run(env: dict[str, str]) -> float:
        done = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                              text=True)
        return float(done.stdout.split()[-1])

    with tempfile.TemporaryDirectory() as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, LOADSTONE_DISABLE_PLUGINS="wado,web",
                   LOADSTONE_MPR_ENGINE="numba")
        cold, warm = run(env), run(env)
        auto = run(dict(env, LOADSTONE_MPR_ENGINE="auto"))
    return cold, warm, auto


def main() -> None:
    warm_memory()
    if _reslice.engine_name() == "numba":
        loadstone_mpr.config.engine = "numba"  # measure numba throughout (auto serves cold planes by numpy)
    print(f"loadstone-mpr benchmark: {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} int16, {os.cpu_count()} CPUs, "
          f"engine {_reslice.engine_name()}, {loadstone_mpr.config.threads} threads")
    volume = make_volume()
    image_min = float(volume.min())
    volume_id, ids = register(volume)

    # -- building the volume ---------------------------------------------------------
    started = time.perf_counter()
    built = loadstone_mpr.get_volume(volume_id)
    first_build = (time.perf_counter() - started) * 1e3
    arrays = [loadstone.load_image(i).result().pixel_data for i in ids]
    key = f"mpr-volume:volume={volume_id}"

    def rebuild() -> None:
        loadstone.cache.remove_image_load_object(key)  # the slices stay cached
        loadstone_mpr.get_volume(volume_id)

    times = median_ms({"build": rebuild, "stack": lambda: np.stack(arrays)}, rounds=11)
    print("\nvolume from 400 slices")
    print(f"  first build (loads 400 slices into the cache):  {first_build:8.1f} ms")
    print(f"  build from 400 cached images:                   {times['build']:8.1f} ms")
    print(f"  numpy.stack of the same arrays:                 {times['stack']:8.1f} ms"
          f"   ratio {times['build'] / times['stack']:.2f}x (goal <= 2x)")
    built = loadstone_mpr.get_volume(volume_id)
    geometry = built.geometry
    assert np.array_equal(built.array, volume)

    def grid_of(image_id: str) -> Any:
        return plane_grid(parse_mpr_id(image_id), geometry, image_id)

    def engine(grid: Any) -> Callable[[], Any]:
        return lambda: _reslice.resample(built.array, geometry, grid, image_min)

    def end_to_end(image_id: str) -> Callable[[], Any]:
        return lambda: loadstone.load_image(image_id).result()

    # -- oblique plane ---------------------------------------------------------------
    oblique_id = f"mpr:oblique;{OBLIQUE_KEYS};volume={volume_id}"
    grid = grid_of(oblique_id)
    def numpy_engine() -> Any:
        saved = loadstone_mpr.config.engine
        loadstone_mpr.config.engine = "numpy"
        try:
            return _reslice.resample(built.array, geometry, grid, image_min)
        finally:
            loadstone_mpr.config.engine = saved

    funcs: dict[str, Callable[[], Any]] = {"mpr engine": engine(grid),
                                           "mpr load_image": end_to_end(oblique_id),
                                           "numpy engine": numpy_engine}
    ours = engine(grid)()[0]
    sitk_image = sitk_peer(volume)
    if sitk_image is not None:
        funcs["SimpleITK"] = lambda: sitk_resample(sitk_image, grid, image_min)
        sitk_out = sitk_resample(sitk_image, grid, image_min)
    try:
        from scipy import ndimage
    except ImportError:
        ndimage = None
        print("  (scipy not installed: pip install scipy)")
    if ndimage is not None:
        o, dr, dc, _ = grid.index_mapping()
        r = np.arange(grid.rows, dtype=np.float64)[:, None]
        c = np.arange(grid.columns, dtype=np.float64)[None, :]
        coordinates = np.stack([o[a] + r * dr[a] + c * dc[a] for a in range(3)])
        funcs["scipy map_coordinates"] = lambda: ndimage.map_coordinates(
            volume, coordinates, order=1, output=np.float32, mode="nearest")
        scipy_out = funcs["scipy map_coordinates"]()
        inside = np.all((coordinates >= -0.5) & (coordinates <= (np.array(SHAPE) - 0.5)[:, None, None]),
                        axis=0)
    times = median_ms(funcs, rounds=41)
    print(f"\noblique 512x512 plane, linear ({OBLIQUE_KEYS})")
    print(f"  loadstone-mpr engine ({_reslice.engine_name()}):             {times['mpr engine']:8.2f} ms")
    print(f"  loadstone.load_image(mpr id).result(), cached volume: {times['mpr load_image']:8.2f} ms")
    print(f"  loadstone-mpr numpy engine (the fallback):           {times['numpy engine']:8.2f} ms")
    if "SimpleITK" in times:
        diff = float(np.abs(ours - sitk_out).max())
        print(f"  SimpleITK ResampleImageFilter:                        {times['SimpleITK']:8.2f} ms"
              f"   ratio {times['mpr engine'] / times['SimpleITK']:.2f}x (goal <= 1.0x); "
              f"max |diff| {diff:.2g}")
    if "scipy map_coordinates" in times:
        diff = float(np.abs(ours - scipy_out)[inside].max())
        print(f"  scipy.ndimage.map_coordinates(order=1):               "
              f"{times['scipy map_coordinates']:8.2f} ms   max |diff| inside {diff:.2g}")

    # -- axis-aligned planes ---------------------------------------------------------
    print("\naxis-aligned planes on the voxel grid, against a numpy copy of the same plane")
    cases = {
        "axial index=200": (f"mpr:axial;index=200;volume={volume_id}", lambda: volume[200].copy()),
        "sagittal index=256": (f"mpr:sagittal;index=256;spacing=1,0.7;volume={volume_id}",
                               lambda: volume[::-1, :, 255].copy()),
        "coronal index=256": (f"mpr:coronal;index=256;spacing=1,0.7;volume={volume_id}",
                              lambda: volume[::-1, 256, :].copy()),
    }
    for name, (image_id, copy) in cases.items():
        plane_grid_ = grid_of(image_id)
        assert np.array_equal(engine(plane_grid_)()[0], copy()), name
        times = median_ms({"engine": engine(plane_grid_), "load": end_to_end(image_id), "numpy": copy},
                          rounds=41)
        print(f"  {name:19s} engine {times['engine']:7.3f} ms   load_image {times['load']:7.3f} ms   "
              f"numpy copy {times['numpy']:7.3f} ms   ratio engine {times['engine'] / times['numpy']:.2f}x "
              f"(goal <= 3x), load_image {times['load'] / times['numpy']:.2f}x")
    iso_id = f"mpr:sagittal;volume={volume_id}"
    iso = grid_of(iso_id)
    times = median_ms({"engine": engine(iso)}, rounds=21)
    print(f"  sagittal at the default isotropic 0.7 mm ({iso.columns}x{iso.rows}, resampled): "
          f"{times['engine']:.2f} ms")

    # -- 10 mm MIP slab --------------------------------------------------------------
    slab_id = f"mpr:oblique;{OBLIQUE_KEYS};slab=10;mode=mip;volume={volume_id}"
    slab = grid_of(slab_id)
    funcs = {"engine": engine(slab)}
    if sitk_image is not None:
        funcs["sitk"] = lambda: sitk_resample(sitk_image, slab, image_min, slab.slab_offsets)
    times = median_ms(funcs, rounds=11)
    print(f"\n10 mm MIP slab, oblique 512x512 ({len(slab.slab_offsets)} samples along the normal)")
    print(f"  loadstone-mpr engine:                               {times['engine']:8.2f} ms")
    if "sitk" in times:
        diff = float(np.abs(engine(slab)()[0] - funcs["sitk"]()).max())
        print(f"  SimpleITK resample of the slab + MaximumProjection: {times['sitk']:8.2f} ms"
              f"   ratio {times['engine'] / times['sitk']:.2f}x; max |diff| {diff:.2g}")
    axial_slab = grid_of(f"mpr:axial;index=200;slab=10;mode=mip;volume={volume_id}")
    times = median_ms({"engine": engine(axial_slab)}, rounds=11)
    print(f"  axial 10 mm MIP ({len(axial_slab.slab_offsets)} samples):                 "
          f"{times['engine']:8.2f} ms")

    # -- JIT -----------------------------------------------------------------------------
    if _reslice.engine_name() == "numba":
        cold, warm, auto = jit_cost()
        print(f"\nfirst oblique plane (64x64 volume) in a fresh process: numba with an empty disk cache "
              f"{cold:.2f} s, with a warm one {warm:.2f} s; engine auto (numpy until numba is loaded) "
              f"{auto:.3f} s")


if __name__ == "__main__":
    main()
