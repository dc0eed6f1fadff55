"""Turn urllib3, socket, ssl and http.client failures into loadstone errors.

Every low-level failure becomes a :class:`~loadstone.errors.TransportError`
(or :class:`~loadstone.errors.LoadTimeoutError` for timeouts) chained to the
original, so callers only ever catch loadstone errors.  ``classify`` also
tells the retry loop whether the request could have reached the server.
"""

from __future__ import annotations

import http.client
import ssl

from urllib3 import exceptions as u3

from ..errors import LoadstoneError, LoadTimeoutError, TransportError

__all__ = [
    "LOW_LEVEL_ERRORS",
    "NOT_SENT",
    "BROKEN",
    "READ_TIMEOUT",
    "classify",
    "translate",
]

# What a request may raise below loadstone (ssl.SSLError and socket.timeout are OSErrors).
LOW_LEVEL_ERRORS: tuple[type[BaseException], ...] = (
    u3.HTTPError,
    OSError,
    http.client.HTTPException,
)

NOT_SENT = "not-sent"  # no connection was made: safe to retry any method
BROKEN = "broken"  # the connection failed after sending: retry idempotent methods only
READ_TIMEOUT = "read-timeout"
CONNECT_TIMEOUT = "connect-timeout"
DNS = "dns"
TLS = "tls"
OTHER = "other"


def classify(exc: BaseException) -> str:
    """Which kind of failure ``exc`` is (one of the constants above)."""
    if isinstance(exc, u3.NameResolutionError):
        return DNS
    if isinstance(exc, u3.NewConnectionError):  # before ConnectTimeoutError: it subclasses it
        return NOT_SENT
    if isinstance(exc, u3.ConnectTimeoutError):
        return CONNECT_TIMEOUT
    if isinstance(exc, (u3.ReadTimeoutError, TimeoutError)):
        return READ_TIMEOUT
    if isinstance(exc, (u3.SSLError, ssl.SSLError, ssl.CertificateError)):
        return TLS
    if isinstance(exc, (u3.ProtocolError, ConnectionError, http.client.HTTPException)):
        return BROKEN
    return OTHER


def translate(
    exc: BaseException,
    *,
    url: str,
    image_id: str | None,
    status: int | None = None,
    read_timeout: float | None = None,
    connect_timeout: float | None = None,
    during: str = "request",
    detail: str = "",
) -> LoadstoneError:
    """The loadstone error for ``exc`` (the caller raises it ``from exc``)."""
    if isinstance(exc, LoadstoneError):
        return exc
    kind = classify(exc)
    if kind == CONNECT_TIMEOUT:
        limit = f" after {connect_timeout:g} s" if connect_timeout is not None else ""
        return LoadTimeoutError(f"connecting to {url} timed out{limit}", image_id=image_id)
    if kind == READ_TIMEOUT:
        limit = f" (read timeout {read_timeout:g} s)" if read_timeout is not None else ""
        what = "the response" if during == "request" else "more of the body"
        return LoadTimeoutError(f"timed out waiting for {what} from {url}{limit}{detail}", image_id=image_id)
    if kind == DNS:
        message = f"cannot resolve the host of {url}"
    elif kind == NOT_SENT:
        message = f"cannot connect to {url}"
    elif kind == TLS:
        message = f"TLS failure with {url}"
    elif during == "body":
        message = f"connection closed mid-body from {url}"
    else:
        message = f"connection to {url} failed"
    return TransportError(f"{message}: {_reason(exc)}{detail}", image_id=image_id, status=status, url=url)


def _reason(exc: BaseException) -> str:
    """A short description: the innermost OS-level cause reads best."""
    inner: BaseException = exc
    seen = 0
    while seen < 5:
        nested = inner.args[1] if isinstance(inner, u3.ProtocolError) and len(inner.args) > 1 else None
        cause = nested if isinstance(nested, BaseException) else inner.__cause__
        if cause is None:
            break
        inner = cause
        seen += 1
    text = str(inner) or type(inner).__name__
    return text if type(inner).__name__ in text else f"{type(inner).__name__}: {text}"
