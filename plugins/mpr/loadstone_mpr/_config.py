"""Settings of the MPR plugin: one mutable object, read at the moment of use.

Kept apart from the code that reads it so that every knob is documented in
one place and can be changed at run time (``loadstone_mpr.config.x = ...``)
without re-importing anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Config", "config", "DEFAULT_MAX_VOLUME_BYTES"]

DEFAULT_MAX_VOLUME_BYTES = 2 << 30  # 2 GiB


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def _default_engine() -> str:
    return os.environ.get("LOADSTONE_MPR_ENGINE", "auto").strip().lower() or "auto"


_ENGINES = ("auto", "numba", "numpy")


@dataclass
class Config:
    """What the MPR plugin may allocate, how strict it is, and how it computes.

    Attributes are checked when set, so a bad value fails where it is made
    rather than deep inside a load.
    """

    #: Largest volume (rows x columns x slices x bytes per voxel) that may be
    #: built; a bigger one is refused with ``ResourceLimitError`` before any
    #: pixel is loaded or allocated.
    max_volume_bytes: int = DEFAULT_MAX_VOLUME_BYTES
    #: Largest derived image, in pixels (rows x columns).
    max_plane_pixels: int = 8192 * 8192
    #: Allowed deviation of each gap between neighbouring slices from the
    #: series' typical gap, as a fraction of it (a missing slice is 100 %).
    spacing_tolerance: float = 0.02
    #: Allowed difference of direction cosines between slices.
    orientation_tolerance: float = 1e-3
    #: Pool priority of the slice loads of a volume (lower starts first): a
    #: user is waiting for the plane, so its slices go before other prefetches.
    slice_priority: int = -100
    #: "auto" (numba when importable, else numpy), "numba" or "numpy".
    engine: str = field(default_factory=_default_engine)
    #: Threads that compute one plane.
    threads: int = field(default_factory=_default_threads)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("max_volume_bytes", "max_plane_pixels", "threads"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        elif name in ("spacing_tolerance", "orientation_tolerance"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
            value = float(value)
        elif name == "slice_priority":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"slice_priority must be an int, got {value!r}")
        elif name == "engine":
            value = str(value).strip().lower()
            if value not in _ENGINES:
                raise ValueError(f"engine must be one of {', '.join(_ENGINES)}, got {value!r}")
        super().__setattr__(name, value)


#: The plugin's settings; change attributes in place.
config = Config()
