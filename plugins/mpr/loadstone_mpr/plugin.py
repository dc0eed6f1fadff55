"""The pluggy hooks that the ``loadstone`` entry point ``mpr`` names.

Wiring only, and cheap to import: the loader, the metadata provider and the
stack expansion are imported when a hook is first called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from loadstone import hookimpl
from loadstone.config import PluginConfig

from ._grammar import SCHEME, is_mpr_id
from .config import config

__all__ = [
    "loadstone_plugin_config",
    "loadstone_image_loaders",
    "loadstone_metadata_providers",
    "loadstone_series_image_ids",
    "loadstone_plugin_details",
]

_Provider = Callable[[str, str], Any]


@hookimpl
def loadstone_image_loaders() -> Mapping[str, Any]:
    """Claim the ``mpr`` scheme."""
    from .loader import load_mpr

    return {SCHEME: load_mpr}


@hookimpl
def loadstone_metadata_providers() -> Iterable[tuple[_Provider, int]]:
    """Answer metadata modules for ``mpr:`` ids (priority 0)."""
    from .metadata import metadata_provider

    return [(metadata_provider, 0)]


@hookimpl
def loadstone_series_image_ids(series_id: str) -> list[str] | None:
    """Expand ``mpr:<axial|sagittal|coronal>;…;series=…`` into the ids of every plane of that stack."""
    if not is_mpr_id(series_id):
        return None
    from .loader import stack_image_ids

    return stack_image_ids(series_id)


@hookimpl
def loadstone_plugin_details() -> Mapping[str, str]:
    """What ``loadstone plugins`` shows about MPR."""
    import importlib.util

    # Said without importing numba: `loadstone plugins` should stay quick.
    has_numba = importlib.util.find_spec("numba") is not None
    engine = "numpy" if config.engine == "numpy" or not has_numba else "numba"
    return {
        "grammar": "mpr:<axial|sagittal|coronal|oblique>[;key=value]*;series=<series id>",
        "engine": engine,
        "max volume": f"{config.max_volume_bytes / 2**30:g} GiB",
    }


@hookimpl
def loadstone_plugin_config() -> PluginConfig[Any]:
    """The plugin's settings, for ``loadstone --set mpr.<setting>=<value>``."""
    return config
