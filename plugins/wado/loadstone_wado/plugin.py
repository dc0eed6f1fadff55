"""The pluggy hooks that the ``loadstone`` entry point ``wado`` names.

Wiring only: the loaders, providers and series expansion live in
:mod:`.schemes`, imported by the hooks (so importing this module costs
nothing until loadstone asks for one of the plugin's schemes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from loadstone import hookimpl
from loadstone.config import PluginConfig

from .config import Settings, config

__all__ = [
    "loadstone_image_loaders",
    "loadstone_metadata_providers",
    "loadstone_series_image_ids",
    "loadstone_list_series",
    "loadstone_plugin_config",
    "loadstone_plugin_details",
]

# Structural types, so this module needs no more of the core than ``hookimpl``.
_Loader = Callable[[str, Mapping[str, Any]], Any]
_Provider = Callable[[str, str], Any]


@hookimpl
def loadstone_image_loaders() -> Mapping[str, _Loader]:
    """Claim ``dicomfile``, ``wadouri``, ``dicomweb`` and ``wadors``."""
    from .schemes import IMAGE_LOADERS

    return IMAGE_LOADERS


@hookimpl
def loadstone_metadata_providers() -> Iterable[tuple[_Provider, int]]:
    """Part 10 datasets (dicomfile:, wadouri:) and DICOM JSON (wadors:), at priority 0."""
    from .schemes import METADATA_PROVIDERS

    return METADATA_PROVIDERS


@hookimpl
def loadstone_series_image_ids(series_id: str, options: Mapping[str, Any]) -> list[str] | None:
    """A ``dicomfile:`` folder or a ``wadors:`` series (fetched with the caller's ``options``); None else."""
    from .schemes import series_image_ids

    return series_image_ids(series_id, options)


@hookimpl
def loadstone_list_series(location: str, recursive: bool) -> list[Any] | None:
    """The series of a folder or DICOMDIR (``dicomfile:`` id or bare path); None for other locations."""
    from .schemes import list_series

    return list_series(location, recursive)


@hookimpl
def loadstone_plugin_config() -> PluginConfig[Settings]:
    """The plugin's settings, for ``loadstone --set wado.key=value``."""
    return config


@hookimpl
def loadstone_plugin_details() -> Mapping[str, str]:
    """For ``loadstone plugins``: the decodable transfer syntaxes, the decoder used, the pool."""
    from .dicom.syntaxes import NATIVE_SYNTAXES, syntax_name
    from .pixels import available_transfer_syntaxes
    from .pixels.pool import describe as describe_pool

    syntaxes = available_transfer_syntaxes()
    native = ", ".join(sorted(uid for uid in syntaxes if uid in NATIVE_SYNTAXES))
    listing = [f"uncompressed ({native}): loadstone numpy"]
    listing += [f"{syntax_name(uid)}: {decoder}" for uid, decoder in syntaxes.items()
                if uid not in NATIVE_SYNTAXES]
    return {"transfer syntaxes": "; ".join(listing), "decode pool": describe_pool()}
