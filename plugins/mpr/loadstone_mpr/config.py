"""Settings of the MPR plugin: what it may allocate, how strict it is, how it computes.

In loadstone's one plugin-settings style (:mod:`loadstone.config`): a frozen
:class:`Settings` dataclass, checked in ``__post_init__``, and one
:class:`~loadstone.config.PluginConfig` named ``mpr``, read at the moment of
use, so every knob can be changed at run time without re-importing anything::

    import loadstone_mpr
    loadstone_mpr.config.max_volume_bytes = 4 << 30      # checked, then swapped in whole
    with loadstone_mpr.config.override(engine="numpy"):
        ...
    loadstone_mpr.config.reset()

Initial values come from the environment, ``LOADSTONE_MPR_<SETTING>``
(``LOADSTONE_MPR_ENGINE=numpy``, ``LOADSTONE_MPR_MAX_VOLUME_BYTES=4294967296``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from loadstone.config import PluginConfig

__all__ = ["Settings", "Config", "config", "DEFAULT_MAX_VOLUME_BYTES", "ENGINES"]

DEFAULT_MAX_VOLUME_BYTES = 2 << 30  # 2 GiB
#: "auto" (numba when importable, else numpy), "numba" or "numpy".
ENGINES = ("auto", "numba", "numpy")


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def _lower(text: str) -> str:
    return text.strip().lower()


@dataclass(frozen=True)
class Settings:
    """The MPR plugin's settings (``loadstone_mpr.config``).

    Checked when set, so a bad value fails where it is made rather than deep
    inside a load (``ValueError``).
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
    #: One of :data:`ENGINES` (also ``LOADSTONE_MPR_ENGINE``).
    engine: str = field(default="auto", metadata={"parse": _lower})
    #: Threads that compute one plane.
    threads: int = field(default_factory=_default_threads)

    def __post_init__(self) -> None:
        for name in ("max_volume_bytes", "max_plane_pixels", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("spacing_tolerance", "orientation_tolerance"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        if isinstance(self.slice_priority, bool) or not isinstance(self.slice_priority, int):
            raise ValueError(f"slice_priority must be an int, got {self.slice_priority!r}")
        engine = _lower(str(self.engine))
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        object.__setattr__(self, "engine", engine)


#: The older name of :class:`Settings`.
Config = Settings

#: The plugin's settings: ``loadstone_mpr.config.max_volume_bytes = …``, ``config.override(...)``.
config: PluginConfig[Settings] = PluginConfig("mpr", Settings)
