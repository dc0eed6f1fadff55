"""The numba reslice kernels (imported only when a plane is computed).

Each kernel fills rows ``r0 .. r1`` of ``out`` and counts, per row, the
pixels that had at least one sample inside the volume, so the caller can
split rows across threads and tell a plane that misses the volume.  Sample
``(r, c, s)`` sits at array index ``o + r*dr + c*dc + offsets[s]*ds`` (k, j, i
order).  A sample is inside when each index lies in ``[-0.5, n - 0.5]`` (as
ITK decides); linear interpolation clamps to the edge voxels within that
half voxel.  Outside samples give ``fill`` (and are skipped in a slab).

``nogil`` lets plain Python threads run chunks in parallel; ``cache`` keeps
the compiled code on disk, so only the first run on a machine pays the JIT.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from numba import njit

__all__ = ["plane_linear", "plane_nearest", "slab"]

MODE_MAX, MODE_MIN, MODE_MEAN = 0, 1, 2

_F = TypeVar("_F", bound=Callable[..., Any])
_njit: Any = njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")


def _jit(function: _F) -> _F:
    """Compile ``function`` with numba (typed here: numba ships no type information)."""
    return cast(_F, _njit(function))


@_jit
def _linear_at(vol: Any, k: float, j: float, i: float, mk: int, mj: int, mi: int) -> float:
    if k < 0.0:
        k = 0.0
    elif k > mk:
        k = float(mk)
    if j < 0.0:
        j = 0.0
    elif j > mj:
        j = float(mj)
    if i < 0.0:
        i = 0.0
    elif i > mi:
        i = float(mi)
    k0 = int(k)
    j0 = int(j)
    i0 = int(i)
    fk = k - k0
    fj = j - j0
    fi = i - i0
    k1 = k0 + 1 if k0 < mk else k0
    j1 = j0 + 1 if j0 < mj else j0
    i1 = i0 + 1 if i0 < mi else i0
    v000 = float(vol[k0, j0, i0])
    v001 = float(vol[k0, j0, i1])
    v010 = float(vol[k0, j1, i0])
    v011 = float(vol[k0, j1, i1])
    v100 = float(vol[k1, j0, i0])
    v101 = float(vol[k1, j0, i1])
    v110 = float(vol[k1, j1, i0])
    v111 = float(vol[k1, j1, i1])
    a = v000 + fi * (v001 - v000)
    b = v010 + fi * (v011 - v010)
    c = v100 + fi * (v101 - v100)
    d = v110 + fi * (v111 - v110)
    e = a + fj * (b - a)
    f = c + fj * (d - c)
    return e + fk * (f - e)


@_jit
def _linear_inside(vol: Any, k: float, j: float, i: float) -> float:
    """Trilinear at a point with all eight neighbours inside (no clamping: the common case)."""
    k0 = int(k)
    j0 = int(j)
    i0 = int(i)
    fk = k - k0
    fj = j - j0
    fi = i - i0
    v000 = float(vol[k0, j0, i0])
    v001 = float(vol[k0, j0, i0 + 1])
    v010 = float(vol[k0, j0 + 1, i0])
    v011 = float(vol[k0, j0 + 1, i0 + 1])
    v100 = float(vol[k0 + 1, j0, i0])
    v101 = float(vol[k0 + 1, j0, i0 + 1])
    v110 = float(vol[k0 + 1, j0 + 1, i0])
    v111 = float(vol[k0 + 1, j0 + 1, i0 + 1])
    a = v000 + fi * (v001 - v000)
    b = v010 + fi * (v011 - v010)
    c = v100 + fi * (v101 - v100)
    d = v110 + fi * (v111 - v110)
    e = a + fj * (b - a)
    f = c + fj * (d - c)
    return e + fk * (f - e)


@_jit
def _nearest_at(vol: Any, k: float, j: float, i: float, mk: int, mj: int, mi: int) -> float:
    k0 = int(k + 0.5)
    j0 = int(j + 0.5)
    i0 = int(i + 0.5)
    return float(vol[min(k0, mk), min(j0, mj), min(i0, mi)])


@_jit
def plane_linear(vol: Any, o: Any, dr: Any, dc: Any, fill: float, out: Any, inside: Any,
                 r0: int, r1: int) -> None:
    """One plane, trilinear."""
    nk, nj, ni = vol.shape
    hk, hj, hi = nk - 0.5, nj - 0.5, ni - 0.5
    mk, mj, mi = nk - 1, nj - 1, ni - 1
    columns = out.shape[1]
    for r in range(r0, r1):
        bk = o[0] + r * dr[0]
        bj = o[1] + r * dr[1]
        bi = o[2] + r * dr[2]
        count = 0
        for c in range(columns):
            k = bk + c * dc[0]
            j = bj + c * dc[1]
            i = bi + c * dc[2]
            if 0.0 <= k < mk and 0.0 <= j < mj and 0.0 <= i < mi:
                count += 1
                out[r, c] = _linear_inside(vol, k, j, i)
            elif -0.5 <= k <= hk and -0.5 <= j <= hj and -0.5 <= i <= hi:
                count += 1
                out[r, c] = _linear_at(vol, k, j, i, mk, mj, mi)
            else:
                out[r, c] = fill
        inside[r] = count


@_jit
def plane_nearest(vol: Any, o: Any, dr: Any, dc: Any, fill: float, out: Any, inside: Any,
                  r0: int, r1: int) -> None:
    """One plane, nearest neighbour."""
    nk, nj, ni = vol.shape
    hk, hj, hi = nk - 0.5, nj - 0.5, ni - 0.5
    mk, mj, mi = nk - 1, nj - 1, ni - 1
    columns = out.shape[1]
    for r in range(r0, r1):
        bk = o[0] + r * dr[0]
        bj = o[1] + r * dr[1]
        bi = o[2] + r * dr[2]
        count = 0
        for c in range(columns):
            k = bk + c * dc[0]
            j = bj + c * dc[1]
            i = bi + c * dc[2]
            if not (-0.5 <= k <= hk and -0.5 <= j <= hj and -0.5 <= i <= hi):
                out[r, c] = fill
                continue
            count += 1
            out[r, c] = _nearest_at(vol, k, j, i, mk, mj, mi)
        inside[r] = count


@_jit
def slab(vol: Any, o: Any, dr: Any, dc: Any, ds: Any, offsets: Any, linear: bool, mode: int,
         fill: float, out: Any, inside: Any, r0: int, r1: int) -> None:
    """A slab: samples along the normal at ``offsets`` (mm) projected by max, min or mean."""
    nk, nj, ni = vol.shape
    hk, hj, hi = nk - 0.5, nj - 0.5, ni - 0.5
    mk, mj, mi = nk - 1, nj - 1, ni - 1
    columns = out.shape[1]
    samples = offsets.shape[0]
    for r in range(r0, r1):
        bk = o[0] + r * dr[0]
        bj = o[1] + r * dr[1]
        bi = o[2] + r * dr[2]
        count = 0
        for c in range(columns):
            ck = bk + c * dc[0]
            cj = bj + c * dc[1]
            ci = bi + c * dc[2]
            hits = 0
            acc = 0.0
            for s in range(samples):
                k = ck + offsets[s] * ds[0]
                j = cj + offsets[s] * ds[1]
                i = ci + offsets[s] * ds[2]
                if not (-0.5 <= k <= hk and -0.5 <= j <= hj and -0.5 <= i <= hi):
                    continue
                if linear:
                    if 0.0 <= k < mk and 0.0 <= j < mj and 0.0 <= i < mi:
                        value = _linear_inside(vol, k, j, i)
                    else:
                        value = _linear_at(vol, k, j, i, mk, mj, mi)
                else:
                    value = _nearest_at(vol, k, j, i, mk, mj, mi)
                if hits == 0:
                    acc = value
                elif mode == MODE_MAX:
                    if value > acc:
                        acc = value
                elif mode == MODE_MIN:
                    if value < acc:
                        acc = value
                else:
                    acc += value
                hits += 1
            if hits == 0:
                out[r, c] = fill
                continue
            count += 1
            out[r, c] = acc / hits if mode == MODE_MEAN else acc
        inside[r] = count
