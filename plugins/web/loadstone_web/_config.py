"""``loadstone_web.config``: the process-wide settings of the web loader.

One :class:`WebConfig` instance, :data:`config`, read at the start of every
load (a load never sees half of a change).  Assign its attributes, or use
:meth:`WebConfig.override` for a temporary change (tests), and
:meth:`WebConfig.reset` to go back to the defaults.  Several settings can be
overridden for one load by the load option of the same name.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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
    """An immutable snapshot of the configuration, as one load sees it."""

    formats: frozenset[str] = DEFAULT_FORMATS
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES
    file_root: Path | None = None
    allow_any_file: bool = False
    strict_content_type: bool = False
    apply_exif_orientation: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)
    before_send: Callable[..., Any] | None = None
    http_client: Any = None  # loadstone.http.HttpClient; None: loadstone.http.default_client()
    decode_concurrency: int | None = None  # None: one decode per CPU


class WebConfig:
    """Settings of the ``http``/``https``/``web`` loader (one instance: ``loadstone_web.config``).

    Attributes (assign to change; each is validated):

    ``formats``
        The image formats decoded: ``{"PNG", "JPEG"}`` by default; add any of
        ``"WEBP"``, ``"GIF"``, ``"BMP"``, ``"TIFF"`` (or use :meth:`enable`).
        Bytes of any other format are refused: ``UnsupportedError`` for a
        known format that is not enabled, ``InvalidImageError`` for the rest.
    ``max_pixels``
        Largest width x height decoded (default Pillow's 89,478,485). Checked
        from the file header before Pillow decodes anything, and the larger
        ``ResourceLimitError`` replaces Pillow's decompression-bomb warning.
        Setting it above ``PIL.Image.MAX_IMAGE_PIXELS`` raises Pillow's limit
        to match (so the two agree); :meth:`reset` puts Pillow's back.
    ``max_bytes``
        Largest body or file read (default 256 MiB): ``ResourceLimitError``.
    ``file_root``
        Folder that ``web:file:`` ids may read from (symlinks resolved;
        anything outside is ``PolicyDeniedError``). ``None`` (default) with
        ``allow_any_file`` False: ``web:file:`` is disabled.
    ``allow_any_file``
        True allows every local file ``web:file:`` names (default False).
    ``strict_content_type``
        True: an image whose ``Content-Type`` names another format (or a
        non-image type) is an ``InvalidImageError``. False (default): the
        bytes decide, and the mismatch is recorded in ``image.extra``.
        A text/HTML body is refused either way.
    ``apply_exif_orientation``
        Rotate/flip by the EXIF Orientation tag (default True).
    ``headers``, ``before_send``
        Sent with / run before every web request (e.g. ``Authorization``);
        the load options of the same name add to them.
    ``http_client``
        A :class:`loadstone.http.HttpClient` to use instead of the shared
        default one (e.g. one with ``allowed_hosts``, ``verify`` or
        ``retries`` of its own).
    ``decode_concurrency``
        How many images are decoded at once, across all loads (default
        ``None``: one per CPU). Fetches are not limited by it.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._settings = Settings()
        self._pillow_limit_before: int | None = None
        self._pillow_limit_set: int | None = None

    # -- reading -------------------------------------------------------------------
    def snapshot(self) -> Settings:
        """The current settings, frozen."""
        return self._settings

    def __repr__(self) -> str:
        s = self._settings
        return (
            f"WebConfig(formats={sorted(s.formats)}, max_pixels={s.max_pixels}, max_bytes={s.max_bytes}, "
            f"file_root={s.file_root}, allow_any_file={s.allow_any_file}, "
            f"strict_content_type={s.strict_content_type}, "
            f"apply_exif_orientation={s.apply_exif_orientation}, headers={list(s.headers)}, "
            f"before_send={s.before_send!r}, http_client={s.http_client!r}, "
            f"decode_concurrency={s.decode_concurrency})"
        )

    # -- attributes ------------------------------------------------------------------
    @property
    def formats(self) -> frozenset[str]:
        return self._settings.formats

    @formats.setter
    def formats(self, value: Iterable[str]) -> None:
        self._set(formats=normalize_formats(value))

    @property
    def max_pixels(self) -> int:
        return self._settings.max_pixels

    @max_pixels.setter
    def max_pixels(self, value: int) -> None:
        value = _positive_int("max_pixels", value)
        with self._lock:
            self._set(max_pixels=value)
            self._sync_pillow_limit(value)

    @property
    def max_bytes(self) -> int:
        return self._settings.max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        self._set(max_bytes=_positive_int("max_bytes", value))

    @property
    def file_root(self) -> Path | None:
        return self._settings.file_root

    @file_root.setter
    def file_root(self, value: str | os.PathLike[str] | None) -> None:
        if value is None:
            self._set(file_root=None)
            return
        root = Path(os.fspath(value)).expanduser()
        if not root.is_absolute():
            raise ValueError(f"file_root must be an absolute path, got {value!r}")
        self._set(file_root=root)

    @property
    def allow_any_file(self) -> bool:
        return self._settings.allow_any_file

    @allow_any_file.setter
    def allow_any_file(self, value: bool) -> None:
        self._set(allow_any_file=bool(value))

    @property
    def strict_content_type(self) -> bool:
        return self._settings.strict_content_type

    @strict_content_type.setter
    def strict_content_type(self, value: bool) -> None:
        self._set(strict_content_type=bool(value))

    @property
    def apply_exif_orientation(self) -> bool:
        return self._settings.apply_exif_orientation

    @apply_exif_orientation.setter
    def apply_exif_orientation(self, value: bool) -> None:
        self._set(apply_exif_orientation=bool(value))

    @property
    def headers(self) -> Mapping[str, str]:
        return self._settings.headers

    @headers.setter
    def headers(self, value: Mapping[str, str] | None) -> None:
        if value is not None and not isinstance(value, Mapping):
            raise TypeError("headers must be a mapping of str to str")
        self._set(headers=dict(value or {}))

    @property
    def before_send(self) -> Callable[..., Any] | None:
        return self._settings.before_send

    @before_send.setter
    def before_send(self, value: Callable[..., Any] | None) -> None:
        if value is not None and not callable(value):
            raise TypeError("before_send must be callable or None")
        self._set(before_send=value)

    @property
    def http_client(self) -> Any:
        return self._settings.http_client

    @http_client.setter
    def http_client(self, value: Any) -> None:
        if value is not None and not callable(getattr(value, "get", None)):
            raise TypeError("http_client must be a loadstone.http.HttpClient or None")
        self._set(http_client=value)

    @property
    def decode_concurrency(self) -> int | None:
        return self._settings.decode_concurrency

    @decode_concurrency.setter
    def decode_concurrency(self, value: int | None) -> None:
        self._set(decode_concurrency=None if value is None else _positive_int("decode_concurrency", value))

    # -- helpers ------------------------------------------------------------------------
    def enable(self, *formats: str) -> None:
        """Add formats to ``formats`` (e.g. ``config.enable("GIF", "WEBP")``)."""
        with self._lock:
            self._set(formats=self._settings.formats | normalize_formats(formats))

    def disable(self, *formats: str) -> None:
        """Remove formats from ``formats``."""
        with self._lock:
            self._set(formats=self._settings.formats - normalize_formats(formats))

    def update(self, **changes: Any) -> None:
        """Set several attributes at once (validated like single assignments)."""
        unknown = set(changes) - {f for f in Settings.__dataclass_fields__}
        if unknown:
            raise AttributeError(f"unknown loadstone_web.config settings: {', '.join(sorted(unknown))}")
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)

    def reset(self) -> None:
        """Back to the defaults (and Pillow's pixel limit back to what it was)."""
        with self._lock:
            self._settings = Settings()
            self._restore_pillow_limit()

    @contextlib.contextmanager
    def override(self, **changes: Any) -> Iterator[WebConfig]:
        """``with config.override(formats={"PNG"}): ...``: changes undone on exit."""
        with self._lock:
            saved = self._settings
        try:
            self.update(**changes)
            yield self
        finally:
            with self._lock:
                self._settings = saved
                self._restore_pillow_limit()
                self._sync_pillow_limit(saved.max_pixels)

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and not isinstance(getattr(type(self), name, None), property):
            raise AttributeError(f"unknown loadstone_web.config setting {name!r}")
        super().__setattr__(name, value)

    # -- internals --------------------------------------------------------------------
    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._settings = replace(self._settings, **changes)

    def _sync_pillow_limit(self, wanted: int) -> None:
        """Raise ``PIL.Image.MAX_IMAGE_PIXELS`` to ``wanted`` if it is lower (never lower it)."""
        from PIL import Image as PILImage

        current = PILImage.MAX_IMAGE_PIXELS
        if current is not None and current < wanted:
            if self._pillow_limit_set is None:
                self._pillow_limit_before = current
            PILImage.MAX_IMAGE_PIXELS = wanted
            self._pillow_limit_set = wanted

    def _restore_pillow_limit(self) -> None:
        if self._pillow_limit_set is None:
            return
        from PIL import Image as PILImage

        if self._pillow_limit_set == PILImage.MAX_IMAGE_PIXELS:  # nobody changed it since
            PILImage.MAX_IMAGE_PIXELS = self._pillow_limit_before
        self._pillow_limit_before = self._pillow_limit_set = None


config = WebConfig()
