"""The pluggy hooks that the ``loadstone`` entry point ``base64_demo`` names.

Wiring only, and cheap to import: the loader and the metadata provider
(numpy, the core's load machinery) are imported when a hook is first called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from loadstone import hookimpl
from loadstone.config import PluginConfig

from ._ids import SCHEME, parse_series_id
from ._series import SERIES
from .config import config

__all__ = [
    "loadstone_plugin_config",
    "loadstone_image_loaders",
    "loadstone_metadata_providers",
    "loadstone_plugin_details",
    "loadstone_series_image_ids",
]

# Structural types, so this module needs no more of the core than ``hookimpl``.
_Loader = Callable[[str, Mapping[str, Any]], Any]
_Provider = Callable[[str, str], Any]


@hookimpl
def loadstone_image_loaders() -> Mapping[str, _Loader]:
    """Claim the ``example`` scheme."""
    from .loader import load_example

    return {SCHEME: load_example}


@hookimpl
def loadstone_metadata_providers() -> Iterable[tuple[_Provider, int]]:
    """Answer metadata modules for ``example:`` ids, at the default priority 0."""
    from .metadata import metadata_provider

    return [(metadata_provider, 0)]


@hookimpl
def loadstone_series_image_ids(series_id: str) -> list[str] | None:
    """Expand ``example://ct``, ``example://mr`` or ``example://color`` into ordered image ids.

    Slices are in index order, which is increasing position along the slice
    normal; None for any other series id, so other plugins get their turn.
    """
    spec = parse_series_id(series_id)
    if spec is None:
        return None
    return [spec.image_id(index) for index in range(spec.slices)]


@hookimpl
def loadstone_plugin_details() -> Mapping[str, str]:
    """What ``loadstone plugins`` shows: the series this plugin serves, and the simulated latency."""
    details = {
        "series": ", ".join(
            f"{spec.series_id} ({spec.modality}, {spec.slices} x {spec.rows}x{spec.columns})"
            for spec in SERIES.values()
        )
    }
    latency = config.get().latency
    if latency:
        details["latency"] = f"{latency:g} s per load (simulated)"
    return details


@hookimpl
def loadstone_plugin_config() -> PluginConfig[Any]:
    """The plugin's settings, for ``loadstone --set base64_demo.<setting>=<value>``."""
    return config
