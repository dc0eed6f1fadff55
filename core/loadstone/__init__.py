"""loadstone: load medical and web images by image id.

The image id's scheme (the text before the first ``:``) picks an image loader;
loaders come from plugins found through the ``loadstone`` entry-point group,
or from :func:`register_image_loader`.  Every load returns an
:class:`ImageLoadObject` at once::

    import loadstone
    image = loadstone.load_and_cache_image("example://ct/32").result()
    png = image.to_png()

Heavier parts (plugins, pluggy, HTTP, the CLI) load on first use, so
``import loadstone`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._api import (
    cancel_load_all,
    cancel_load_image,
    get_image_loader,
    load_and_cache_image,
    load_image,
    load_images,
    plugin_configs,
    plugin_hooks,
    plugins,
    register_image_loader,
    register_unknown_image_loader,
    scheme_distributions,
    scheme_of,
    schemes,
    series_image_ids,
    unregister_image_loader,
)
from .errors import (
    ImageLoadError,
    InvalidImageError,
    InvalidImageIdError,
    LoadCancelledError,
    LoadOptionError,
    LoadstoneError,
    LoadstoneWarning,
    LoadTimeoutError,
    PluginError,
    PolicyDeniedError,
    ResourceLimitError,
    TransportError,
    UnknownSchemeError,
    UnsupportedError,
)

if TYPE_CHECKING:
    import pluggy

    from . import http as http
    from . import testing as testing
    from ._cache import CacheInfo, ImageCache
    from ._completion import as_completed
    from ._context import LoadContext, current_load, use_load_context
    from ._events import EventBus
    from ._image import Image
    from ._load_object import ImageLoadObject
    from ._loader import ImageLoader, image_loader
    from ._metadata import MetadataRegistry
    from ._plugins import KNOWN_SCHEMES, PluginInfo
    from ._pool import RequestPool
    from ._request_type import RequestType
    from .series import SeriesInfo, list_series
    from .volume import Volume, load_volume

    cache: ImageCache
    metadata: MetadataRegistry
    events: EventBus
    pool: RequestPool
    hookimpl: pluggy.HookimplMarker

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # loading
    "load_image",
    "load_and_cache_image",
    "load_images",
    "cancel_load_image",
    "cancel_load_all",
    "series_image_ids",
    "load_volume",
    "list_series",
    "as_completed",
    "register_image_loader",
    "register_unknown_image_loader",
    "unregister_image_loader",
    "get_image_loader",
    "register_plugin",
    "plugins",
    "plugin_hooks",
    "plugin_configs",
    "scheme_distributions",
    "KNOWN_SCHEMES",
    "schemes",
    "scheme_of",
    # objects
    "Image",
    "Volume",
    "SeriesInfo",
    "ImageLoadObject",
    "ImageLoader",
    "image_loader",
    "LoadContext",
    "current_load",
    "use_load_context",
    "RequestType",
    "PluginInfo",
    "CacheInfo",
    "cache",
    "metadata",
    "events",
    "pool",
    "hookimpl",
    # errors
    "LoadstoneError",
    "UnknownSchemeError",
    "InvalidImageIdError",
    "ImageLoadError",
    "InvalidImageError",
    "UnsupportedError",
    "ResourceLimitError",
    "PolicyDeniedError",
    "TransportError",
    "LoadTimeoutError",
    "LoadCancelledError",
    "PluginError",
    "LoadstoneWarning",
    "LoadOptionError",
]


def register_plugin(plugin: object, name: str | None = None) -> PluginInfo:
    """Register a plugin object or module by hand, as discovery does for entry points."""
    from . import _state

    return _state.registry.register_plugin(plugin, name)


# Attributes imported on first access: they pull in numpy, pluggy or urllib3.
_LAZY = {
    "Image": ("._image", "Image"),
    "Volume": (".volume", "Volume"),
    "SeriesInfo": (".series", "SeriesInfo"),
    "list_series": (".series", "list_series"),
    "load_volume": (".volume", "load_volume"),
    "as_completed": ("._completion", "as_completed"),
    "geometry": (".geometry", None),
    "volume": (".volume", None),
    "toolkit": (".toolkit", None),
    "config": (".config", None),
    "ImageLoadObject": ("._load_object", "ImageLoadObject"),
    "ImageLoader": ("._loader", "ImageLoader"),
    "image_loader": ("._loader", "image_loader"),
    "LoadContext": ("._context", "LoadContext"),
    "current_load": ("._context", "current_load"),
    "use_load_context": ("._context", "use_load_context"),
    "RequestType": ("._request_type", "RequestType"),
    "RequestPool": ("._pool", "RequestPool"),
    "PluginInfo": ("._plugins", "PluginInfo"),
    "KNOWN_SCHEMES": ("._plugins", "KNOWN_SCHEMES"),
    "CacheInfo": ("._cache", "CacheInfo"),
    "ImageCache": ("._cache", "ImageCache"),
    "EventBus": ("._events", "EventBus"),
    "MetadataRegistry": ("._metadata", "MetadataRegistry"),
    "hookimpl": (".hookspecs", "hookimpl"),
    "cache": ("._state", "cache"),
    "metadata": ("._state", "metadata"),
    "events": ("._state", "events"),
    "pool": ("._state", "pool"),
    "http": (".http", None),
    "testing": (".testing", None),
    "hookspecs": (".hookspecs", None),
    "cli": (".cli", None),
    "fetching": (".fetching", None),
}


def __getattr__(name: str) -> Any:
    import importlib

    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'loadstone' has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
