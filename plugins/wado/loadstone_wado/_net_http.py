"""The one place the WADO loaders turn load options into :mod:`loadstone.http` calls.

Why: every request of a load (the Part 10 file, frames, metadata, bulk
data) must carry the same credentials and hooks, and requests that may be
shared between loads (one batch of frames, one metadata fetch) may only be
shared between loads that would have sent the same credentials.

Options read (all optional): ``headers`` (a mapping, e.g. ``Authorization``),
``before_send`` (a :data:`loadstone.http.BeforeSend` hook), ``http_client``
(a :class:`loadstone.http.HttpClient` to use instead of the shared one) and
``max_bytes`` (a body cap).  ``timeout`` and cancellation need nothing here:
the running load's context reaches the HTTP layer by itself.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadstone.http import HttpClient, HttpResponse

__all__ = ["fetch", "share_key", "client_for"]


def client_for(options: Mapping[str, Any] | None) -> HttpClient:
    """The client a load uses: its ``http_client`` option, else loadstone's shared one."""
    from loadstone import http

    client = options.get("http_client") if options else None
    if client is None:
        return http.default_client()
    if not isinstance(client, http.HttpClient):
        raise TypeError(f"the http_client option must be a loadstone.http.HttpClient, not {client!r}")
    return client


def fetch(url: str, options: Mapping[str, Any] | None, *, accept: str | None = None) -> HttpResponse:
    """GET ``url`` with the load's headers and hooks; ``accept`` wins over a user ``Accept``.

    Every failure is a typed loadstone error (``TransportError`` with
    ``.status`` for HTTP errors, ``LoadTimeoutError``, ``LoadCancelledError``,
    ``ResourceLimitError``, ``PolicyDeniedError``).
    """
    headers: dict[str, str] = {}
    if options:
        user = options.get("headers")
        if user:
            headers.update({str(k): str(v) for k, v in user.items()})
    if accept is not None:
        for name in [n for n in headers if n.lower() == "accept"]:
            del headers[name]
        headers["Accept"] = accept
    kwargs: dict[str, Any] = {"headers": headers}
    if options:
        if options.get("before_send") is not None:
            kwargs["before_send"] = options["before_send"]
        if options.get("max_bytes") is not None:
            kwargs["max_bytes"] = int(options["max_bytes"])
    return client_for(options).get(url, **kwargs)


def share_key(options: Mapping[str, Any] | None) -> Hashable:
    """What two loads must have in common to share one request's answer.

    Different credentials (headers, hook, client) may see different data —
    or none — so their requests are never merged.
    """
    if not options:
        return ()
    headers = options.get("headers") or {}
    return (
        tuple(sorted((str(k).lower(), str(v)) for k, v in headers.items())),
        options.get("before_send"),  # compared by identity, kept alive by the key
        options.get("http_client"),
        options.get("max_bytes"),
    )
