"""``loadstone_web.config``: the process-wide settings of the web loader.

In loadstone's one plugin-settings style (:mod:`loadstone.config`): a frozen
:class:`Settings` dataclass, checked in ``__post_init__``, and one
:class:`~loadstone.config.PluginConfig` named ``web`` that swaps a changed
copy in whole, so a load reads one consistent snapshot when it starts::

    from loadstone_web import config
    config.enable("GIF", "WEBP")             # PNG and JPEG only by default
    config.file_root = "/data/images"        # web:file: ids (off by default)
    with config.override(strict_content_type=True):
        ...
    config.reset()                           # defaults (and Pillow's pixel limit) back

Initial values come from the environment, ``LOADSTONE_WEB_<SETTING>``
(``LOADSTONE_WEB_FORMATS=png,jpeg,gif``, ``LOADSTONE_WEB_FILE_ROOT=/data``);
``before_send`` and ``http_client`` are set from code only.  The load options
``formats``, ``max_pixels`` and ``max_bytes`` override the setting of the
same name for one load.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from loadstone.config import PluginConfig

from ._sniff import KNOWN_FORMATS

__all__ = [
    "DEFAULT_FORMATS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "Settings",
    "WebConfig",
    "config",
    "normalize_formats",
]

#: Formats decoded out of the box; the others in KNOWN_FORMATS must be enabled.
DEFAULT_FORMATS = frozenset({"PNG", "JPEG"})
#: Pillow's own default ``PIL.Image.MAX_IMAGE_PIXELS`` (about 89.5 megapixels).
DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3
#: The largest body (HTTP) or file read: 256 MiB.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024

_ALIASES = {"JPG": "JPEG", "JPE": "JPEG", "JFIF": "JPEG", "TIF": "TIFF", "WEBP": "WEBP"}


def normalize_formats(formats: Iterable[str] | str) -> frozenset[str]:
    """Upper-case format names with aliases resolved (``jpg`` → ``JPEG``); unknown names raise."""
    if isinstance(formats, str):
        formats = [formats]
    result = set()
    for name in formats:
        if not isinstance(name, str):
            raise TypeError(f"format names are strings, got {name!r}")
        upper = name.strip().upper()
        upper = _ALIASES.get(upper, upper)
        if upper not in KNOWN_FORMATS:
            raise ValueError(f"unknown image format {name!r}; known: {', '.join(KNOWN_FORMATS)}")
        result.add(upper)
    return frozenset(result)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


@dataclass(frozen=True)
class Settings:
    """The settings of the ``http``/``https``/``web`` loader, as one load sees them.

    ``formats``
        The image formats decoded: ``{"PNG", "JPEG"}`` by default; add any of
        ``"WEBP"``, ``"GIF"``, ``"BMP"``, ``"TIFF"`` (or use
        :meth:`WebConfig.enable`).  Bytes of any other format are refused:
        ``UnsupportedError`` for a known format that is not enabled,
        ``InvalidImageError`` for the rest.
    ``max_pixels``
        Largest width x height decoded (default Pillow's 89,478,485). Checked
        from the file header before Pillow decodes anything.  Setting it above
        ``PIL.Image.MAX_IMAGE_PIXELS`` raises Pillow's limit to match (so the
        two agree); :meth:`~loadstone.config.PluginConfig.reset` puts Pillow's back.
    ``max_bytes``
        Largest body or file read (default 256 MiB): ``ResourceLimitError``.
    ``file_root``
        Folder that ``web:file:`` ids may read from (an absolute path; symlinks
        resolved; anything outside is ``PolicyDeniedError``).  ``None``
        (default) with ``allow_any_file`` False: ``web:file:`` is disabled.
    ``allow_any_file``
        True allows every local file ``web:file:`` names (default False).
    ``strict_content_type``
        True: an image whose ``Content-Type`` names another format (or a
        non-image type) is an ``InvalidImageError``.  False (default): the
        bytes decide, and the mismatch is recorded in ``image.extra``.
    ``apply_exif_orientation``
        Rotate/flip by the EXIF Orientation tag (default True).
    ``headers``, ``before_send``
        Sent with / run before every web request (e.g. ``Authorization``);
        the load options of the same name add to them.
    ``http_client``
        A :class:`loadstone.http.HttpClient` to use instead of the shared one.
    ``decode_concurrency``
        How many images are decoded at once, across all loads (default
        ``None``: one per CPU).  Fetches are not limited by it.
    """

    formats: frozenset[str] = DEFAULT_FORMATS
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    file_root: Path | None = None
    allow_any_file: bool = False
    strict_content_type: bool = False
    apply_exif_orientation: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)
    before_send: Callable[..., Any] | None = field(default=None, metadata={"env": None})
    #: A loadstone.http.HttpClient; None: loadstone.http.default_client().
    http_client: Any = field(default=None, metadata={"env": None})
    decode_concurrency: int | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "formats", normalize_formats(self.formats))
        _positive_int("max_pixels", self.max_pixels)
        _positive_int("max_bytes", self.max_bytes)
        if self.file_root is not None:
            root = Path(os.fspath(self.file_root)).expanduser()
            if not root.is_absolute():
                raise ValueError(f"file_root must be an absolute path, got {self.file_root!r}")
            set_(self, "file_root", root)
        for name in ("allow_any_file", "strict_content_type", "apply_exif_orientation"):
            set_(self, name, bool(getattr(self, name)))
        if self.headers is None:
            set_(self, "headers", {})
        elif not isinstance(self.headers, Mapping):
            raise TypeError("headers must be a mapping of str to str")
        else:
            set_(self, "headers", dict(self.headers))
        if self.before_send is not None and not callable(self.before_send):
            raise TypeError("before_send must be callable or None")
        if self.http_client is not None and not callable(getattr(self.http_client, "request", None)):
            raise TypeError("http_client must be a loadstone.http.HttpClient or None")
        if self.decode_concurrency is not None:
            _positive_int("decode_concurrency", self.decode_concurrency)


class WebConfig(PluginConfig[Settings]):
    """:class:`~loadstone.config.PluginConfig` of :class:`Settings`, with format helpers.

    Besides the common interface (``config.max_bytes = …``, ``configure``,
    ``restore``, ``override``, ``reset``): :meth:`enable` / :meth:`disable`
    formats, and keeping ``PIL.Image.MAX_IMAGE_PIXELS`` at least ``max_pixels``.
    """

    #: (Pillow's limit before this config raised it, the value it set), or None.
    _pillow_raised: ClassVar[tuple[int | None, int] | None] = None

    def __init__(self) -> None:
        super().__init__("web", Settings)

    def snapshot(self) -> Settings:
        """The settings in force (the same as :meth:`get`)."""
        return self.get()

    def enable(self, *formats: str) -> None:
        """Add formats to ``formats`` (e.g. ``config.enable("GIF", "WEBP")``)."""
        self.configure(formats=self.get().formats | normalize_formats(formats))

    def disable(self, *formats: str) -> None:
        """Remove formats from ``formats``."""
        self.configure(formats=self.get().formats - normalize_formats(formats))

    def update(self, **changes: Any) -> None:
        """The older name of :meth:`configure` (unknown names raise ``AttributeError``)."""
        unknown = sorted(set(changes) - set(self.fields()))
        if unknown:
            raise AttributeError(f"unknown loadstone_web.config settings: {', '.join(unknown)}")
        self.configure(**changes)

    # -- Pillow's pixel limit follows max_pixels -------------------------------------
    def configure(self, **changes: Any) -> Settings:
        previous = super().configure(**changes)
        if "max_pixels" in changes:
            self._raise_pillow_limit(self.get().max_pixels)
        return previous

    def restore(self, previous: Settings) -> None:
        super().restore(previous)
        self._restore_pillow_limit()
        self._raise_pillow_limit(previous.max_pixels)

    def reset(self) -> None:
        super().reset()
        self._restore_pillow_limit()

    def _raise_pillow_limit(self, wanted: int) -> None:
        """Raise ``PIL.Image.MAX_IMAGE_PIXELS`` to ``wanted`` if it is lower (never lower it)."""
        from PIL import Image as PILImage

        current = PILImage.MAX_IMAGE_PIXELS
        if current is not None and current < wanted:
            raised = self._pillow_raised
            object.__setattr__(self, "_pillow_raised", (current if raised is None else raised[0], wanted))
            PILImage.MAX_IMAGE_PIXELS = wanted

    def _restore_pillow_limit(self) -> None:
        raised = self._pillow_raised
        if raised is None:
            return
        from PIL import Image as PILImage

        if raised[1] == PILImage.MAX_IMAGE_PIXELS:  # nobody changed it since
            PILImage.MAX_IMAGE_PIXELS = raised[0]
        object.__setattr__(self, "_pillow_raised", None)


#: The web loader's settings (``config.formats``, ``config.enable("GIF")``, ``config.override(...)``).
config = WebConfig()
