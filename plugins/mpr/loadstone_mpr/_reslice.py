"""The reslice engine: sample a volume on a plane grid.

Three paths, picked per plane:

* **exact grid** — the plane's pixels fall on voxel centres with unit steps
  along two volume axes (an axial plane of an axial series, or any axis plane
  at the source spacing): plain numpy slicing, a copy of the stored values;
* **numba** — compiled trilinear / nearest / slab kernels run over row chunks
  on a small thread pool (chosen by measurement: see README and
  ``benchmarks/bench_mpr.py``; about SimpleITK's speed or better);
* **numpy** — the same arithmetic vectorised, for when numba is missing.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from loadstone.geometry import VolumeGeometry

from ._geometry import PlaneGrid
from .config import config

__all__ = ["resample", "output_dtype", "exact_slices", "engine_name", "warm_up"]

_MODES = {"mip": 0, "minip": 1, "mean": 2}
#: Below this many samples a plane is computed on the calling thread alone.
_PARALLEL_MIN_SAMPLES = 1 << 15
#: Rows of a numpy chunk are sized to about this many samples (bounds temporaries).
_NUMPY_CHUNK_SAMPLES = 1 << 18

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()
_kernels: Any = None
_kernels_failed = False


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool, _pool_size
    wanted = config.threads
    if _pool is None or _pool_size != wanted:
        with _pool_lock:
            if _pool is None or _pool_size != wanted:
                old = _pool
                _pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=max(1, wanted), thread_name_prefix="loadstone-mpr-kernel")
                _pool_size = wanted
                if old is not None:
                    old.shutdown(wait=False)
    return _pool


def _numba_kernels() -> Any:
    """The numba kernels module, or None when numba is not importable (then numpy computes)."""
    global _kernels, _kernels_failed
    if _kernels is None and not _kernels_failed:
        try:
            from . import _kernels as kernels
        except ImportError:
            _kernels_failed = True
        else:
            _kernels = kernels
    return _kernels


# -- warming the JIT -------------------------------------------------------------------
# numba's kernels load from the disk cache (or compile) on their first call per
# dtype: ~0.25 s with a warm cache, ~1 s without.  So the first planes of a
# dtype, up to this many samples, are computed by numpy (tens of ms), which
# then starts loading the kernels on a background thread for the planes that
# follow.  (Not earlier: the loading holds the GIL much of the time and would
# slow the numpy plane down several times.)
_NUMPY_WHILE_WARMING = 1 << 21
_warm_lock = threading.Lock()
_warm: set[str] = set()
_warming: set[str] = set()


def warm_up(dtype: Any = np.int16) -> None:
    """Load (or compile) the numba kernels for volumes of ``dtype`` on a background thread."""
    if config.engine == "numpy":
        return
    dtype = np.dtype(dtype)
    with _warm_lock:
        if dtype.str in _warm or dtype.str in _warming:
            return
        _warming.add(dtype.str)
    threading.Thread(target=_warm_kernels, args=(dtype,), name="loadstone-mpr-jit", daemon=True).start()


def _warm_kernels(dtype: np.dtype[Any]) -> None:
    try:
        kernels = _numba_kernels()
        if kernels is not None:
            tiny, v3, offsets = np.zeros((2, 2, 2), dtype), np.zeros(3), np.zeros(2)
            tiny.setflags(write=False)  # volumes are read-only: numba compiles for exactly that type
            inside = np.zeros(1, dtype=np.int64)
            interpolated = np.empty((1, 1), np.float64 if dtype == np.float64 else np.float32)
            stored = np.empty((1, 1), dtype)
            kernels.plane_linear(tiny, v3, v3, v3, 0.0, interpolated, inside, 0, 1)
            kernels.plane_nearest(tiny, v3, v3, v3, 0.0, stored, inside, 0, 1)
            kernels.slab(tiny, v3, v3, v3, v3, offsets, True, 0, 0.0, interpolated, inside, 0, 1)
            kernels.slab(tiny, v3, v3, v3, v3, offsets, False, 0, 0.0, stored, inside, 0, 1)
    except Exception:  # a failed warm-up only means the first real call compiles
        pass
    finally:
        with _warm_lock:
            _warming.discard(dtype.str)
            _warm.add(dtype.str)


_has_numba: bool | None = None


def _numba_installed() -> bool:
    """Whether numba can be imported, without importing it (that takes ~0.2 s)."""
    global _has_numba
    if _has_numba is None:
        import importlib.util

        _has_numba = importlib.util.find_spec("numba") is not None
    return _has_numba and not _kernels_failed


def engine_name() -> str:
    """The engine that computes non-exact planes now: ``numba`` or ``numpy``."""
    if config.engine == "numpy":
        return "numpy"
    if _numba_installed():
        return "numba"
    if config.engine == "numba":
        from loadstone import UnsupportedError

        raise UnsupportedError("loadstone_mpr.config.engine is 'numba' but numba is not importable; "
                               "pip install numba")
    return "numpy"


def output_dtype(volume_dtype: np.dtype[Any], grid: PlaneGrid, exact: bool) -> np.dtype[Any]:
    """Stored values stay stored values where no arithmetic mixes them; else float32 (float64 in)."""
    if exact or (grid.interp == "nearest" and (not grid.is_slab or grid.mode != "mean")):
        return np.dtype(volume_dtype)
    return np.dtype(np.float64 if volume_dtype == np.float64 else np.float32)


def _whole(value: float) -> int | None:
    nearest = round(value)
    return nearest if abs(value - nearest) < 1e-6 else None


def exact_slices(grid: PlaneGrid, geometry: VolumeGeometry) -> tuple[tuple[Any, ...], bool] | None:
    """Index expression (and whether to transpose) when the grid is a plain slice of the array.

    Plain Python on purpose: numpy costs microseconds per call on 3-vectors,
    and this runs for every plane.
    """
    if grid.is_slab:
        return None
    origin = [_whole(v) for v in grid.index_origin.tolist()]
    d_row = [_whole(v) for v in grid.index_row.tolist()]
    d_col = [_whole(v) for v in grid.index_column.tolist()]
    if None in origin or None in d_row or None in d_col:
        return None
    if sum(map(abs, d_row)) != 1 or sum(map(abs, d_col)) != 1:  # type: ignore[arg-type]
        return None
    r_axis = next(a for a in range(3) if d_row[a])
    c_axis = next(a for a in range(3) if d_col[a])
    if r_axis == c_axis:
        return None
    shape = geometry.shape
    index: list[Any] = [None, None, None]
    for axis in range(3):
        start = origin[axis]
        assert start is not None
        if axis in (r_axis, c_axis):
            step, count = (d_row[axis], grid.rows) if axis == r_axis else (d_col[axis], grid.columns)
            assert step is not None
            last = start + step * (count - 1)
            if not (0 <= start < shape[axis] and 0 <= last < shape[axis]):
                return None
            stop = last + step
            index[axis] = slice(start, None if stop < 0 else stop, step)
        else:
            if not 0 <= start < shape[axis]:
                return None
            index[axis] = start
    return tuple(index), r_axis > c_axis


def _run_rows(kernel: Callable[..., None], rows: int, columns: int, samples: int, *args: Any) -> None:
    """Call ``kernel(*args, r0, r1)`` over row chunks, in parallel when the plane is big enough."""
    threads = config.threads
    if threads <= 1 or rows < 2 or rows * columns * samples < _PARALLEL_MIN_SAMPLES:
        kernel(*args, 0, rows)
        return
    chunks = min(rows, threads * 8)  # small chunks balance rows that cost more (inside) and less
    bounds = np.linspace(0, rows, chunks + 1).astype(np.int64)
    pool = _executor()
    futures = [pool.submit(kernel, *args, int(bounds[n]), int(bounds[n + 1])) for n in range(1, chunks)]
    try:
        kernel(*args, int(bounds[0]), int(bounds[1]))
    finally:
        for future in futures:
            future.result()


# -- numpy engine --------------------------------------------------------------------
def _numpy_sample(vol: np.ndarray, k: np.ndarray, j: np.ndarray, i: np.ndarray,
                  linear: bool) -> tuple[np.ndarray, np.ndarray]:
    """Values (float64) at fractional indices and a mask of the samples inside the volume."""
    nk, nj, ni = vol.shape
    inside = ((k >= -0.5) & (k <= nk - 0.5) & (j >= -0.5) & (j <= nj - 0.5)
              & (i >= -0.5) & (i <= ni - 0.5))
    if not linear:
        k0 = np.minimum(np.floor(k + 0.5), nk - 1).clip(0).astype(np.intp)
        j0 = np.minimum(np.floor(j + 0.5), nj - 1).clip(0).astype(np.intp)
        i0 = np.minimum(np.floor(i + 0.5), ni - 1).clip(0).astype(np.intp)
        return vol[k0, j0, i0].astype(np.float64), inside
    k = np.clip(k, 0, nk - 1)
    j = np.clip(j, 0, nj - 1)
    i = np.clip(i, 0, ni - 1)
    k0, j0, i0 = (np.floor(a).astype(np.intp) for a in (k, j, i))
    fk, fj, fi = k - k0, j - j0, i - i0
    k1, j1, i1 = np.minimum(k0 + 1, nk - 1), np.minimum(j0 + 1, nj - 1), np.minimum(i0 + 1, ni - 1)

    def at(kk: np.ndarray, jj: np.ndarray, ii: np.ndarray) -> np.ndarray:
        return np.asarray(vol[kk, jj, ii], dtype=np.float64)

    a = at(k0, j0, i0) + fi * (at(k0, j0, i1) - at(k0, j0, i0))
    b = at(k0, j1, i0) + fi * (at(k0, j1, i1) - at(k0, j1, i0))
    c = at(k1, j0, i0) + fi * (at(k1, j0, i1) - at(k1, j0, i0))
    d = at(k1, j1, i0) + fi * (at(k1, j1, i1) - at(k1, j1, i0))
    e = a + fj * (b - a)
    f = c + fj * (d - c)
    return e + fk * (f - e), inside


def _numpy_rows(vol: np.ndarray, o: np.ndarray, dr: np.ndarray, dc: np.ndarray, ds: np.ndarray,
                offsets: np.ndarray, linear: bool, mode: int, fill: float, out: np.ndarray,
                inside: np.ndarray, r0: int, r1: int) -> None:
    columns = out.shape[1]
    r = np.arange(r0, r1, dtype=np.float64)[:, None]
    c = np.arange(columns, dtype=np.float64)[None, :]
    base = [o[a] + r * dr[a] + c * dc[a] for a in range(3)]
    acc: np.ndarray | None = None
    hits = np.zeros((r1 - r0, columns), dtype=np.int64)
    for offset in offsets:
        k, j, i = (base[a] + offset * ds[a] for a in range(3))
        values, mask = _numpy_sample(vol, k, j, i, linear)
        if acc is None:
            acc = np.where(mask, values, np.nan if mode != 2 else 0.0)
        elif mode == 0:
            acc = np.where(mask & ~(values <= acc), values, acc)  # nan acc: take the value
        elif mode == 1:
            acc = np.where(mask & ~(values >= acc), values, acc)
        else:
            acc = acc + np.where(mask, values, 0.0)
        hits += mask
    assert acc is not None
    if mode == 2:
        acc = acc / np.maximum(hits, 1)
    any_hit = hits > 0
    out[r0:r1] = np.where(any_hit, acc, fill)
    inside[r0:r1] = any_hit.sum(axis=1)


def _numpy_engine(vol: np.ndarray, o: np.ndarray, dr: np.ndarray, dc: np.ndarray, ds: np.ndarray,
                  offsets: np.ndarray, linear: bool, mode: int, fill: float, out: np.ndarray,
                  inside: np.ndarray, r0: int, r1: int) -> None:
    step = max(1, _NUMPY_CHUNK_SAMPLES // max(1, out.shape[1] * len(offsets)))
    for start in range(r0, r1, step):
        stop = min(r1, start + step)
        _numpy_rows(vol, o, dr, dc, ds, offsets, linear, mode, fill, out, inside, start, stop)


# -- entry point --------------------------------------------------------------------
def resample(array: np.ndarray, geometry: VolumeGeometry, grid: PlaneGrid,
             fill: float) -> tuple[np.ndarray, int]:
    """The plane's pixels and how many of them had a sample inside the volume."""
    exact = exact_slices(grid, geometry)
    if exact is not None:
        index, transpose = exact
        plane = array[index]
        # Always a copy: a view would let the image write into (and keep alive) the whole volume.
        return (plane.T if transpose else plane).copy(order="C"), grid.rows * grid.columns
    o, dr, dc, ds = grid.index_mapping()
    out = np.empty((grid.rows, grid.columns), dtype=output_dtype(array.dtype, grid, exact=False))
    inside = np.zeros(grid.rows, dtype=np.int64)
    linear = grid.interp == "linear"
    mode = _MODES[grid.mode]
    samples = len(grid.slab_offsets)
    use_numba = engine_name() == "numba"
    warm_after = (use_numba and config.engine == "auto" and array.dtype.str not in _warm
                  and grid.rows * grid.columns * samples <= _NUMPY_WHILE_WARMING)
    kernels = _numba_kernels() if use_numba and not warm_after else None
    if kernels is not None:
        if grid.is_slab:
            _run_rows(kernels.slab, grid.rows, grid.columns, samples, array, o, dr, dc, ds,
                      np.ascontiguousarray(grid.slab_offsets, dtype=np.float64), linear, mode,
                      float(fill), out, inside)
        else:
            kernel = kernels.plane_linear if linear else kernels.plane_nearest
            _run_rows(kernel, grid.rows, grid.columns, 1, array, o, dr, dc, float(fill), out, inside)
    else:
        _run_rows(_numpy_engine, grid.rows, grid.columns, samples, array, o, dr, dc, ds,
                  np.asarray(grid.slab_offsets, dtype=np.float64), linear, mode, float(fill), out, inside)
        if warm_after:
            warm_up(array.dtype)
    return out, int(inside.sum())
