"""loadstone-web: PNG and JPEG images over HTTP(S) and from local files.

The counterpart of Cornerstone's web image loader. Installing it registers
the schemes ``http``, ``https`` and ``web`` with loadstone::

    import loadstone
    image = loadstone.load_and_cache_image("https://example.org/a.png").result()
    load = loadstone.load_image("web:https://example.org/b.jpg", headers={"Authorization": "Bearer …"})
    image = load.result()

    from loadstone_web import config
    config.enable("GIF", "WEBP")          # PNG and JPEG only by default
    config.file_root = "/data/images"     # web:file:///data/images/... (off by default)

Fetching goes through :mod:`loadstone.http` (pooled, retried, cancellable,
size-capped); decoding through Pillow, restricted to the enabled formats.

The package is cheap to import: the settings load at once, the loader and
the decoder (numpy, Pillow, urllib3) on first use of their names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadstone.toolkit import lazy_exports

from ._sniff import KNOWN_FORMATS
from .config import DEFAULT_FORMATS, DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Settings, WebConfig, config

if TYPE_CHECKING:
    from loadstone import Image

    from ._decode import decode
    from .loader import SCHEMES, load_web, load_web_image

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_FORMATS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "KNOWN_FORMATS",
    "SCHEMES",
    "Settings",
    "WebConfig",
    "__version__",
    "config",
    "decode",
    "decode_bytes",
    "load_web",
    "load_web_image",
]

# Names imported on first access (they pull in numpy and the core's load machinery).
_LAZY = {"decode": "._decode", "SCHEMES": ".loader", "load_web": ".loader", "load_web_image": ".loader"}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


def decode_bytes(
    data: bytes | bytearray, image_id: str = "web:bytes", content_type: str | None = None
) -> Image:
    """Decode an in-memory PNG/JPEG/... body with the current configuration.

    Same checks and result as a load (``content_type`` as an HTTP server
    would send it, or None as for a file).
    """
    from ._decode import decode

    return decode(image_id, data, config.get(), content_type=content_type)
