"""The one HTTP layer every loader shares (on urllib3 2.x).

Pooled, thread-safe connections with connect/read/total timeouts, retries
with backoff and ``Retry-After``, cancellation that closes the socket of a
request blocked inside a load, header hooks (sync or async), body size caps
and a redirect policy — so that plugins do not each reinvent them, and a
cancelled or timed-out load really stops its network I/O.

Typical use from a loader (the running load's deadline and cancellation
apply automatically; the load's ``headers``, ``before_send``, ``http_client``,
``max_bytes``, ``retries`` and ``timeout`` options are honoured)::

    from loadstone import http

    def load_thing(image_id, options):
        resp = http.fetch(url, options, accept="image/png", max_bytes=50 * 2**20)
        data = resp.content

Every failure is a :mod:`loadstone.errors` error: ``TransportError``
(``.status``, ``.url``), ``LoadTimeoutError``, ``LoadCancelledError``,
``ResourceLimitError`` or ``PolicyDeniedError``.

This package imports urllib3; ``import loadstone`` does not import it.
"""

from __future__ import annotations

from ._client import DEFAULT_MAX_BYTES, HttpClient, default_client, get, request, set_default_client
from ._hooks import BeforeSend
from ._models import HttpRequest, HttpResponse
from ._options import chain_hooks, client_for, fetch, share_key
from ._retry import RetryPolicy, parse_retry_after

__all__ = [
    "DEFAULT_MAX_BYTES",
    "BeforeSend",
    "HttpClient",
    "HttpRequest",
    "HttpResponse",
    "RetryPolicy",
    "chain_hooks",
    "client_for",
    "default_client",
    "fetch",
    "get",
    "parse_retry_after",
    "request",
    "set_default_client",
    "share_key",
]
