"""Settings of the demo plugin: one, a simulated latency.

The demo's data are embedded and its loads take microseconds, so with it
alone nothing can be seen of what loadstone does for slow sources: progress
bars, cancelling a load, a load's ``timeout``, the request pool's priorities.
``latency`` makes every ``example:`` load wait as if its slice came over a
network; the wait ends early at the load's cancel or deadline, as a real
loader's I/O does::

    from loadstone_base64_demo import config
    config.latency = 0.2                  # seconds per load
    with config.override(latency=2.0):    # for a block
        ...

or, for the command line, ``LOADSTONE_BASE64_DEMO_LATENCY=0.2 loadstone fetch
--series example://ct -o out/``.  In loadstone's one plugin-settings style
(:mod:`loadstone.config`): a frozen :class:`Settings`, checked in
``__post_init__``, in a :class:`~loadstone.config.PluginConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from loadstone.config import PluginConfig

__all__ = ["Settings", "config"]


@dataclass(frozen=True)
class Settings:
    """The demo plugin's settings (``loadstone_base64_demo.config``)."""

    #: Seconds each load waits before returning its slice (0: none, the default).
    latency: float = 0.0

    def __post_init__(self) -> None:
        value = self.latency
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < 0:
            raise ValueError(f"latency must be a number of seconds >= 0, got {value!r}")
        object.__setattr__(self, "latency", float(value))


#: The plugin's settings: ``config.latency = 0.2``, ``config.override(latency=...)``, ``config.reset()``.
config: PluginConfig[Settings] = PluginConfig("base64_demo", Settings)
