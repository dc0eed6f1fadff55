"""From an image id to bytes: HTTP(S) through ``loadstone.http``, or a local file.

Ids: ``http://…`` and ``https://…`` (the id is the URL), ``web:http://…``,
``web:https://…`` and ``web:file:///abs/path`` (``web:file:/abs/path`` and
``web:file:relative/path``, under ``file_root``, are accepted too).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit
from urllib.request import url2pathname

from loadstone import UnsupportedError
from loadstone.errors import InvalidImageIdError
from loadstone.toolkit import RootPolicy, read_file

from .config import Settings

__all__ = ["Fetched", "Source", "accept_header", "fetch", "parse_image_id"]

_MEDIA_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


@dataclass(frozen=True)
class Source:
    """Where an id points: ``kind`` ``"http"`` (``location`` a URL) or ``"file"`` (a path)."""

    kind: str
    location: str


@dataclass(frozen=True)
class Fetched:
    """A body and what came with it."""

    content: bytes | bytearray
    content_type: str | None  # lower-case media type; None for files
    url: str  # the final URL (after redirects), or the file:// URL
    status: int | None
    elapsed_ms: float


def parse_image_id(image_id: str) -> Source:
    """Split an ``http``/``https``/``web`` image id into a :class:`Source`."""
    scheme, sep, rest = image_id.partition(":")
    scheme = scheme.strip().lower()
    if not sep:
        raise InvalidImageIdError(f"not an image id: {image_id!r}", image_id=image_id)
    if scheme in ("http", "https"):
        url = image_id
    elif scheme == "web":
        url = rest.strip()
        if not url:
            raise InvalidImageIdError(
                "web: needs a URL after it, e.g. web:https://host/a.png or web:file:///data/a.png",
                image_id=image_id,
            )
    else:
        raise InvalidImageIdError(f"not a web image id: {image_id!r}", image_id=image_id)
    inner, _, _ = url.partition(":")
    inner = inner.lower()
    if inner in ("http", "https"):
        parts = urlsplit(url)
        if not parts.hostname:
            raise InvalidImageIdError(f"no host in the URL of {image_id!r}", image_id=image_id)
        return Source("http", url.split("#", 1)[0])
    if inner == "file" and scheme == "web":
        return Source("file", url)
    raise UnsupportedError(
        f"loadstone-web loads http, https and (as web:file:) local file URLs, not {inner or url!r}:"
        f" {image_id!r}",
        image_id=image_id,
    )


def accept_header(formats: frozenset[str]) -> str:
    """``Accept`` listing the enabled formats first, so servers that negotiate send one of them."""
    types = [_MEDIA_TYPES[f] for f in ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF") if f in formats]
    return ", ".join([*types, "*/*;q=0.1"])


def fetch(image_id: str, source: Source, settings: Settings, options: Mapping[str, Any]) -> Fetched:
    """The bytes of ``source`` (HTTP, or a file within the configured policy)."""
    if source.kind == "file":
        return _read_file(image_id, source.location, settings)
    return _get(source.location, settings, options)


# -- HTTP ----------------------------------------------------------------------------
def _get(url: str, settings: Settings, options: Mapping[str, Any]) -> Fetched:
    from loadstone import http

    # The configured headers and hook first; the load's own headers win and its hook runs after.
    response = http.fetch(
        url,
        options,
        headers={"Accept": accept_header(settings.formats), **settings.headers},
        before_send=settings.before_send,
        max_bytes=settings.max_bytes,
        client=settings.http_client,
    )
    return Fetched(
        content=response.content,
        content_type=response.content_type,
        url=response.url,
        status=response.status,
        elapsed_ms=response.elapsed_ms,
    )


# -- files ---------------------------------------------------------------------------
def file_path(image_id: str, url: str, settings: Settings) -> Path:
    """The local path a ``file:`` URL names, checked against the file policy."""
    parts = urlsplit(url)
    host = (parts.netloc or "").lower()
    if host not in ("", "localhost"):
        raise UnsupportedError(
            f"file URLs on another host ({parts.netloc!r}) are not supported: {image_id!r}", image_id=image_id
        )
    if parts.query:
        raise InvalidImageIdError(
            f"a file URL takes no query (percent-encode '?' in file names as %3F): {image_id!r}",
            image_id=image_id,
        )
    raw = url2pathname(parts.path)
    if not raw:
        raise InvalidImageIdError(f"no path in {image_id!r}", image_id=image_id)
    if "\x00" in raw:
        raise InvalidImageIdError(f"NUL in the path of {image_id!r}", image_id=image_id)
    if settings.file_root is None and settings.allow_any_file and not os.path.isabs(raw):
        raise InvalidImageIdError(
            f"relative file path in {image_id!r} needs loadstone_web.config.file_root", image_id=image_id
        )
    policy = RootPolicy(settings.file_root, settings.allow_any_file, hint="loadstone_web.config.file_root")
    return policy.resolve(raw, image_id)


def _read_file(image_id: str, url: str, settings: Settings) -> Fetched:
    started = time.perf_counter()
    path = file_path(image_id, url, settings)
    # Never blocks on a FIFO; only regular files; refused above the cap before reading.
    read = read_file(path, image_id, max_bytes=settings.max_bytes,
                     limit_hint="loadstone_web.config.max_bytes", allow_empty=True)
    return Fetched(
        content=cast("bytes | bytearray", read.data),  # not memory-mapped: allow_mmap is off
        content_type=None,
        url=path.as_uri(),
        status=None,
        elapsed_ms=(time.perf_counter() - started) * 1000.0,
    )
