"""Read (or throw away) a response body within a size cap.

A body of known length without content coding is read straight into one
``bytearray`` (``readinto`` on a window of it): no list of chunks, no
``b"".join``, and the buffer can back a numpy array without a copy.  Only up
to :data:`TRUSTED_LENGTH` is reserved from the ``Content-Length`` header
alone; a larger buffer grows as the bytes arrive.  Anything else (chunked,
compressed) is read in chunks.  Either way the ``max_bytes`` cap is enforced
before or while reading, never after.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from urllib3.response import HTTPResponse

from ..errors import LoadstoneError, ResourceLimitError, TransportError
from ._errors import LOW_LEVEL_ERRORS

__all__ = ["WINDOW", "discard", "read_body", "read_snippet"]

WINDOW = 256 * 1024  # bytes per read: large enough for speed, small enough to react to cancel
#: The most memory a Content-Length may reserve before the bytes arrive; a larger body's
#: buffer grows (doubling) as they do, so a lying header cannot allocate gigabytes up front.
TRUSTED_LENGTH = 16 * 1024 * 1024
_PROGRESS_STEP = 1024 * 1024
_DRAIN_LIMIT = 64 * 1024  # a small unwanted body is read to keep the connection; larger ones close it

Progress = Callable[[int, "int | None"], None]
Check = Callable[[], None]
OnError = Callable[[BaseException, int, "int | None"], LoadstoneError]


def content_coded(resp: HTTPResponse) -> bool:
    coding = resp.headers.get("Content-Encoding", "").strip().lower()
    return coding not in ("", "identity")


def read_body(
    resp: HTTPResponse,
    *,
    url: str,
    max_bytes: int,
    image_id: str | None,
    check: Check,
    on_error: OnError,
    progress: Progress | None = None,
) -> bytes | bytearray:
    """The whole body of ``resp``.

    ``check`` raises if the request must stop (cancel, deadline); it runs
    between reads.  ``on_error(exc, loaded, total)`` builds the error for a
    low-level failure.  ``progress(loaded, total)`` is called about every MiB.
    """
    total = resp.length_remaining  # None when unknown; 0 for HEAD, 204 and 304
    if total is not None and total > max_bytes:
        raise ResourceLimitError(
            f"response from {url} is {total} bytes, above the cap of {max_bytes} bytes (max_bytes)",
            image_id=image_id,
        )
    if total is not None and not content_coded(resp):
        return _read_known(
            resp, total, url=url, image_id=image_id, check=check, on_error=on_error, progress=progress
        )
    return _read_chunks(
        resp,
        total,
        url=url,
        max_bytes=max_bytes,
        image_id=image_id,
        check=check,
        on_error=on_error,
        progress=progress,
    )


def _read_known(
    resp: HTTPResponse,
    total: int,
    *,
    url: str,
    image_id: str | None,
    check: Check,
    on_error: OnError,
    progress: Progress | None,
) -> bytearray:
    buf = bytearray(min(total, TRUSTED_LENGTH))
    view = memoryview(buf)
    pos = 0
    reported = 0
    while pos < total:
        check()
        if pos == len(buf):  # past what the header alone may reserve: grow as the bytes come
            view.release()
            buf.extend(bytes(min(len(buf), total - len(buf))))
            view = memoryview(buf)
        try:
            n = resp.readinto(view[pos : min(pos + WINDOW, len(buf))])
        except LOW_LEVEL_ERRORS as exc:
            raise on_error(exc, pos, total) from exc
        if not n:
            check()  # a cancel shuts the socket down, which reads as end of stream
            raise TransportError(
                f"connection closed mid-body from {url}: got {pos} of {total} bytes",
                image_id=image_id,
                status=resp.status,
                url=url,
            )
        pos += n
        if progress is not None and (pos - reported >= _PROGRESS_STEP or pos == total):
            progress(pos, total)
            reported = pos
    del view
    if not resp.isclosed():
        _finish(resp)  # e.g. an empty body: urllib3 pools the connection once it sees the end
    if total == 0 and progress is not None:
        progress(0, 0)
    return buf


def _read_chunks(
    resp: HTTPResponse,
    total: int | None,
    *,
    url: str,
    max_bytes: int,
    image_id: str | None,
    check: Check,
    on_error: OnError,
    progress: Progress | None,
) -> bytes:
    parts: list[bytes] = []
    loaded = 0
    reported = 0
    while True:
        check()
        try:
            # read1 returns what one socket read gave (decoded), never waits to fill WINDOW.
            data = resp.read1(WINDOW)
        except LOW_LEVEL_ERRORS as exc:
            raise on_error(exc, loaded, total) from exc
        if not data:
            check()  # end of stream may be a cancel's shutdown, not the body's end
            break
        loaded += len(data)
        if loaded > max_bytes:
            raise ResourceLimitError(
                f"response from {url} grew past the cap of {max_bytes} bytes (max_bytes)",
                image_id=image_id,
            )
        parts.append(data)
        if progress is not None and loaded - reported >= _PROGRESS_STEP:
            progress(loaded, total)
            reported = loaded
    if progress is not None and (reported != loaded or loaded == 0):
        progress(loaded, loaded)  # the end: now the total is known
    return b"".join(parts)


def _finish(resp: HTTPResponse) -> None:
    """Let urllib3 see the end of an empty body, which returns the connection to the pool."""
    try:
        resp.read()
    except LOW_LEVEL_ERRORS:
        resp.close()


def discard(resp: HTTPResponse) -> None:
    """Be done with a response we do not want (redirect, retry, error).

    A small remaining body is read so the connection can be reused; a large
    or unknown one is not worth waiting for, so the connection is closed.
    """
    try:
        remaining = resp.length_remaining
        if remaining is not None and remaining <= _DRAIN_LIMIT:
            resp.read(remaining + 1, decode_content=False)
        if not resp.isclosed():
            resp.close()
    except LOW_LEVEL_ERRORS:
        resp.close()
    finally:
        resp.release_conn()


def read_snippet(resp: HTTPResponse, limit: int = 200) -> str:
    """One line of an error body for the error message: an HTML page's title, else the first line.

    Only text-like bodies are quoted, never a whole page; failures here never
    hide the status.
    """
    content_type = resp.headers.get("Content-Type", "").lower()
    if content_type and not any(t in content_type for t in ("text", "json", "xml", "html")):
        return ""
    try:
        remaining = resp.length_remaining
        if remaining is not None and remaining > _DRAIN_LIMIT:
            return ""
        raw = resp.read(min(8192, _DRAIN_LIMIT))
    except LOW_LEVEL_ERRORS:
        return ""
    return first_line(raw.decode("utf-8", errors="replace"), limit)


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def first_line(text: str, limit: int = 200) -> str:
    """The one line worth quoting from an error page: its <title>, or its first line of text."""
    title = _TITLE.search(text)
    if title is not None:
        candidate = " ".join(_TAG.sub(" ", title.group(1)).split())
    else:
        lines = (" ".join(_TAG.sub(" ", line).split()) for line in text.splitlines())
        candidate = next((line for line in lines if line), "")
    return candidate if len(candidate) <= limit else candidate[: limit - 1] + "…"
