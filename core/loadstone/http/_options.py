"""Load options → one :mod:`loadstone.http` request: the one place plugins turn options into HTTP.

Why: every request of a load (the file, its frames, its metadata) must carry
the same credentials and hooks, and requests shared between loads (a batch
of frames, one metadata fetch) may only be shared between loads that would
have sent the same credentials.

Options read (all optional): ``headers`` (a mapping, e.g. ``Authorization``),
``before_send`` (a :data:`BeforeSend` hook, sync or async), ``http_client``
(an :class:`HttpClient` instead of the shared one), ``max_bytes`` (a body
cap), ``retries`` and ``timeout`` (seconds for this request; the running
load's own deadline and cancellation apply by themselves).  A loader that
fetches through here declares the ones beyond loadstone's own with
``@image_loader(options=loadstone.toolkit.HTTP_LOAD_OPTIONS)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Hashable, Mapping
from typing import Any

from ._client import HttpClient, default_client
from ._hooks import BeforeSend
from ._models import HttpResponse

__all__ = ["fetch", "share_key", "client_for", "chain_hooks"]


def client_for(options: Mapping[str, Any] | None) -> HttpClient:
    """The client a load uses: its ``http_client`` option, else loadstone's shared one."""
    client = options.get("http_client") if options else None
    if client is None:
        return default_client()
    if not isinstance(client, HttpClient):
        raise TypeError(f"the http_client option must be a loadstone.http.HttpClient, not {client!r}")
    return client


def chain_hooks(first: BeforeSend | None, second: BeforeSend | None) -> BeforeSend | None:
    """One ``before_send`` running ``first`` then ``second`` (either may be async)."""
    if first is None or second is None:
        return first or second

    async def both(request: Any) -> None:
        for hook in (first, second):
            result = hook(request)
            if inspect.isawaitable(result):
                await result

    return both


def fetch(url: str, options: Mapping[str, Any] | None = None, *, method: str = "GET",
          accept: str | None = None, headers: Mapping[str, str] | None = None,
          before_send: BeforeSend | None = None, max_bytes: int | None = None,
          client: HttpClient | None = None) -> HttpResponse:
    """Send ``method url`` with the load's options; the plugin's own settings come first.

    ``headers`` and ``before_send`` are the plugin's (its configuration); the
    load's ``headers`` win over them and its ``before_send`` runs after.
    ``accept`` wins over any ``Accept``.  ``max_bytes``: the smaller of the
    plugin's and the load's caps applies.  Every failure is a typed
    loadstone error (``TransportError`` with ``.status``, ``LoadTimeoutError``,
    ``LoadCancelledError``, ``ResourceLimitError``, ``PolicyDeniedError``).
    """
    merged: dict[str, str] = dict(headers or {})
    hook = before_send
    caps = [cap for cap in (max_bytes,) if cap is not None]
    kwargs: dict[str, Any] = {}
    if options:
        user = options.get("headers")
        if user:
            merged.update({str(k): str(v) for k, v in user.items()})
        hook = chain_hooks(hook, options.get("before_send"))
        if options.get("max_bytes") is not None:
            caps.append(int(options["max_bytes"]))
        if options.get("retries") is not None:
            kwargs["retries"] = int(options["retries"])
        if options.get("timeout") is not None:
            kwargs["timeout"] = float(options["timeout"])
    if accept is not None:
        for name in [n for n in merged if n.lower() == "accept"]:
            del merged[name]
        merged["Accept"] = accept
    if hook is not None:
        kwargs["before_send"] = hook
    if caps:
        kwargs["max_bytes"] = min(caps)
    return (client or client_for(options)).request(method, url, headers=merged, **kwargs)


def share_key(options: Mapping[str, Any] | None) -> Hashable:
    """What two loads must have in common to share one request's answer.

    Different credentials (headers, hook, client) may see different data, or
    none, so their requests are never merged.
    """
    if not options:
        options = {}  # the same key as options that hold only scheduling (priority, timeout, ...)
    headers = options.get("headers") or {}
    return (
        tuple(sorted((str(k).lower(), str(v)) for k, v in headers.items())),
        options.get("before_send"),  # compared by identity, kept alive by the key
        options.get("http_client"),
        options.get("max_bytes"),
    )
