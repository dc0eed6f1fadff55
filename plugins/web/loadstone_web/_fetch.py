"""From an image id to bytes: HTTP(S) through ``loadstone.http``, or a local file.

Ids: ``http://…`` and ``https://…`` (the id is the URL), ``web:http://…``,
``web:https://…`` and ``web:file:///abs/path`` (``web:file:/abs/path`` and
``web:file:relative/path``, under ``file_root``, are accepted too).
"""

from __future__ import annotations

import inspect
import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from loadstone import InvalidImageError, PolicyDeniedError, ResourceLimitError, UnsupportedError
from loadstone.errors import InvalidImageIdError

from ._config import Settings

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
        return _read_file(image_id, source.location, settings, options)
    return _get(source.location, settings, options)


# -- HTTP ----------------------------------------------------------------------------
def _get(url: str, settings: Settings, options: Mapping[str, Any]) -> Fetched:
    from loadstone import http

    headers: dict[str, str] = {"Accept": accept_header(settings.formats)}
    headers.update(settings.headers)
    extra_headers = options.get("headers")
    if extra_headers:
        headers.update(extra_headers)
    before_send = _chain(settings.before_send, options.get("before_send"))
    kwargs: dict[str, Any] = {
        "headers": headers,
        "max_bytes": settings.max_bytes,
        "before_send": before_send,
    }
    timeout = options.get("timeout")
    if timeout is not None:
        kwargs["timeout"] = float(timeout)
    retries = options.get("retries")
    if retries is not None:
        kwargs["retries"] = int(retries)
    client = settings.http_client or http.default_client()
    response = client.get(url, **kwargs)
    return Fetched(
        content=response.content,
        content_type=response.content_type,
        url=response.url,
        status=response.status,
        elapsed_ms=response.elapsed_ms,
    )


def _chain(first: Callable[..., Any] | None, second: Callable[..., Any] | None) -> Any:
    """One ``before_send`` running the configured hook, then the load's own (sync or async)."""
    if first is None or second is None:
        return first or second

    async def both(request: Any) -> None:
        for hook in (first, second):
            result = hook(request)
            if inspect.isawaitable(result):
                await result

    return both


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
    root = settings.file_root
    if root is None and not settings.allow_any_file:
        raise PolicyDeniedError(
            "web:file: ids are disabled: set loadstone_web.config.file_root to the folder that "
            "images may be read from (or config.allow_any_file = True)",
            image_id=image_id,
        )
    path = Path(raw)
    if not path.is_absolute():
        if root is None:
            raise InvalidImageIdError(
                f"relative file path in {image_id!r} needs loadstone_web.config.file_root", image_id=image_id
            )
        path = root / path
    if root is not None:
        real = Path(os.path.realpath(path))
        real_root = Path(os.path.realpath(root))
        if real != real_root and real_root not in real.parents:
            raise PolicyDeniedError(
                f"{str(path)!r} is outside the file root {str(root)!r} (symlinks resolved)",
                image_id=image_id,
            )
        return real
    return path


def _read_file(image_id: str, url: str, settings: Settings, options: Mapping[str, Any]) -> Fetched:
    started = time.perf_counter()
    path = file_path(image_id, url, settings)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)  # non-blocking: a FIFO must not hang the load
    except FileNotFoundError as exc:
        raise InvalidImageError(f"no such file {str(path)!r}", image_id=image_id) from exc
    except PermissionError as exc:
        raise PolicyDeniedError(
            f"not allowed to read {str(path)!r}: {exc.strerror}", image_id=image_id
        ) from exc
    except OSError as exc:
        raise InvalidImageError(
            f"cannot open {str(path)!r}: {exc.strerror or exc}", image_id=image_id
        ) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidImageError(f"{str(path)!r} is not a regular file", image_id=image_id)
        size = info.st_size
        if size > settings.max_bytes:
            raise ResourceLimitError(
                f"{str(path)!r} is {size} bytes, above the cap of {settings.max_bytes} bytes "
                "(loadstone_web.config.max_bytes)",
                image_id=image_id,
            )
        buf = bytearray(size)
        view = memoryview(buf)
        pos = 0
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as stream:
            while pos < size:
                n = stream.readinto(view[pos:])
                if not n:
                    break
                pos += n
        view.release()
        if pos != size:
            raise InvalidImageError(
                f"{str(path)!r} shrank while being read ({pos} of {size} bytes)", image_id=image_id
            )
    except OSError as exc:
        raise InvalidImageError(
            f"cannot read {str(path)!r}: {exc.strerror or exc}", image_id=image_id
        ) from exc
    finally:
        os.close(fd)
    return Fetched(
        content=buf,
        content_type=None,
        url=path.as_uri(),
        status=None,
        elapsed_ms=(time.perf_counter() - started) * 1000.0,
    )
