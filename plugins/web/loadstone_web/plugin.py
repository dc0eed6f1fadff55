"""The pluggy hooks that the ``loadstone`` entry point ``web`` names.

Wiring only, and cheap to import: the loader (numpy, Pillow, urllib3) is
imported when loadstone first asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from loadstone import hookimpl
from loadstone.config import PluginConfig

from .config import config

__all__ = ["loadstone_image_loaders", "loadstone_plugin_config", "loadstone_plugin_details"]

_Loader = Callable[[str, Mapping[str, Any]], Any]


@hookimpl
def loadstone_image_loaders() -> Mapping[str, _Loader]:
    """Claim ``http``, ``https`` and ``web``."""
    from .loader import SCHEMES, load_web

    return dict.fromkeys(SCHEMES, load_web)


@hookimpl
def loadstone_plugin_details() -> Mapping[str, str]:
    """What ``loadstone plugins`` shows: formats enabled and the local-file policy."""
    settings = config.get()
    if settings.file_root is not None:
        files = f"under {settings.file_root}"
    elif settings.allow_any_file:
        files = "any"
    else:
        files = "disabled"
    return {
        "formats": ", ".join(sorted(settings.formats)),
        "max pixels": str(settings.max_pixels),
        "web:file:": files,
    }


@hookimpl
def loadstone_plugin_config() -> PluginConfig[Any]:
    """The plugin's settings, for ``loadstone --set web.<setting>=<value>``."""
    return config
