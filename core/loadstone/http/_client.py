"""The client: one pooled, policy-enforcing request loop shared by every loader.

``HttpClient.request`` sends, retries, follows redirects and reads the body,
and turns every failure into a loadstone error.  When it runs inside a load
(:func:`loadstone._context.current_load`) it honours that load's deadline and
cancellation without any argument being passed down.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from functools import lru_cache
from typing import Any, cast

from urllib3 import HTTPHeaderDict, Timeout
from urllib3.response import HTTPResponse

from .._context import LoadContext, current_load
from ..errors import LoadstoneError, TransportError
from . import _body, _errors
from ._connection import RequestGuard, new_pool_manager, no_guard
from ._deadline import Deadline, interruption
from ._hooks import BeforeSend, run_hooks
from ._models import HttpRequest, HttpResponse
from ._redirect import REDIRECT_STATUSES, check_url, follow_redirect
from ._retry import (
    IDEMPOTENT_METHODS,
    RETRY_AFTER_STATUSES,
    RETRY_STATUSES,
    RetryPolicy,
    parse_retry_after,
    sleep,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "HttpClient",
    "default_client",
    "get",
    "request",
    "set_default_client",
]

DEFAULT_MAX_BYTES = 2 * 1024**3


@lru_cache(maxsize=1)
def _user_agent() -> str:
    try:
        from importlib.metadata import version

        return f"loadstone/{version('loadstone')}"
    except Exception:  # not installed as a distribution (source tree)
        return "loadstone"


class HttpClient:
    """Pooled HTTP(S) with timeouts, retries, cancellation, hooks, caps and redirect policy.

    Thread-safe: one client (and its connection pools) serves every thread.
    Every keyword is a default that :meth:`request` may override per call
    where it has a parameter of the same name.

    ``connect_timeout`` and ``read_timeout`` bound each connect and each wait
    for data; ``timeout`` (default none) bounds a whole call, further limited
    by the running load's deadline.  ``retries``/``backoff_base``/
    ``backoff_max``/``retry_after_max`` configure :class:`RetryPolicy`.
    ``allowed_hosts`` (hostnames, ``*.example.org`` for subdomains) limits
    every URL contacted, redirects included.  ``verify=False`` skips TLS
    certificate checks; ``ca_certs`` names a CA bundle file.
    """

    def __init__(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        before_send: BeforeSend | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        timeout: float | None = None,
        retries: int = 3,
        backoff_base: float = 0.25,
        backoff_max: float = 10.0,
        retry_after_max: float = 120.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = 5,
        allowed_hosts: Collection[str] | None = None,
        pool_connections: int = 16,
        pool_maxsize: int = 10,
        verify: bool = True,
        ca_certs: str | None = None,
    ) -> None:
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("connect_timeout and read_timeout must be positive")
        self.headers = HTTPHeaderDict({"User-Agent": _user_agent()})
        if headers:
            self.headers.update(headers)
        self.before_send = before_send
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.timeout = timeout
        self.retry = RetryPolicy(
            retries=retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            retry_after_max=retry_after_max,
        )
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.allowed_hosts: frozenset[str] | None = (
            None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)
        )
        pool_kw: dict[str, Any] = {"num_pools": pool_connections, "maxsize": pool_maxsize, "block": False}
        if not verify:
            pool_kw["cert_reqs"] = "CERT_NONE"
        elif ca_certs is not None:
            pool_kw["ca_certs"] = ca_certs
        self._pool = new_pool_manager(**pool_kw)

    # -- lifecycle -------------------------------------------------------------
    def close(self) -> None:
        """Close every pooled connection (the client stays usable; it reconnects)."""
        pools = self._pool.pools
        # urllib3 2.x's PoolManager.clear() only forgets its pools (no dispose
        # hook): close each one so its sockets go now, not at garbage collection.
        for key in list(pools.keys()):
            pool = pools.get(key)
            if pool is not None:
                pool.close()
        self._pool.clear()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --------------------------------------------------------------
    def get(self, url: str, **kwargs: Any) -> HttpResponse:
        """``request("GET", url, ...)``."""
        return self.request("GET", url, **kwargs)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float | None = None,
        max_bytes: int | None = None,
        before_send: BeforeSend | None = None,
        retries: int | None = None,
        max_redirects: int | None = None,
        allow_redirects: bool = True,
    ) -> HttpResponse:
        """Send one request and return the complete response.

        Raises (all from :mod:`loadstone.errors`): ``TransportError`` for
        network failures and statuses >= 400 (``.status``, ``.url``),
        ``LoadTimeoutError``, ``LoadCancelledError``, ``ResourceLimitError``
        (body above ``max_bytes``) and ``PolicyDeniedError`` (host not
        allowed, https→http redirect).
        """
        started = time.perf_counter()
        ctx = current_load()
        image_id = ctx.image_id if ctx is not None else None
        if ctx is not None:
            ctx.check()
        deadline = Deadline(self.timeout if timeout is None else timeout, ctx)
        limit = self.max_bytes if max_bytes is None else max_bytes
        policy = self.retry if retries is None else _with_retries(self.retry, retries)
        hops_allowed = self.max_redirects if max_redirects is None else max_redirects

        merged = HTTPHeaderDict(self.headers)
        if headers:
            merged.update(headers)
        req = HttpRequest(method=method.upper(), url=url, headers=merged, body=body)
        run_hooks((self.before_send, before_send), req, image_id)
        req.method = req.method.upper()
        check_url(req.url, self.allowed_hosts, image_id)

        guard = RequestGuard(ctx, deadline.at) if (ctx is not None or deadline.at is not None) else None
        try:
            with _guarding(guard):
                resp, req = self._exchange(
                    req, ctx, deadline, policy, hops_allowed, allow_redirects, image_id
                )
                try:
                    content = self._read(resp, req.url, ctx, deadline, limit, image_id)
                except BaseException:
                    _abandon(resp)
                    raise
        finally:
            if guard is not None:
                guard.close()
        return HttpResponse(
            status=resp.status,
            headers=resp.headers,
            content=content,
            url=req.url,
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
            reason=resp.reason or "",
        )

    # -- internals ---------------------------------------------------------------
    def _exchange(
        self,
        req: HttpRequest,
        ctx: LoadContext | None,
        deadline: Deadline,
        policy: RetryPolicy,
        hops_allowed: int,
        allow_redirects: bool,
        image_id: str | None,
    ) -> tuple[HTTPResponse, HttpRequest]:
        """Send until a final answer: retries and redirects done, status < 400, body unread."""
        retry = 0
        hops = 0
        while True:
            stop = interruption(ctx, deadline, req.url)
            if stop is not None:
                raise stop
            read_timeout = deadline.cap(self.read_timeout)
            connect_timeout = deadline.cap(self.connect_timeout)
            try:
                resp = cast(
                    HTTPResponse,
                    self._pool.urlopen(
                        req.method,
                        req.url,
                        body=req.body,
                        headers=HTTPHeaderDict(req.headers),
                        retries=False,
                        redirect=False,
                        preload_content=False,
                        decode_content=True,
                        timeout=Timeout(connect=connect_timeout, read=read_timeout),
                    ),
                )
            except _errors.LOW_LEVEL_ERRORS as exc:
                stop = interruption(ctx, deadline, req.url)
                if stop is not None:
                    raise stop from exc
                error = _errors.translate(
                    exc,
                    url=req.url,
                    image_id=image_id,
                    read_timeout=read_timeout,
                    connect_timeout=connect_timeout,
                )
                kind = _errors.classify(exc)
                retryable = kind in (_errors.NOT_SENT, _errors.CONNECT_TIMEOUT) or (
                    kind == _errors.BROKEN and req.method in IDEMPOTENT_METHODS
                )
                if not retryable or retry >= policy.retries:
                    raise error from exc
                retry += 1
                self._wait(policy.backoff(retry), ctx, deadline, req.url, error, exc)
                continue

            status = resp.status
            if allow_redirects and status in REDIRECT_STATUSES and resp.headers.get("Location"):
                location = resp.headers["Location"]
                _body.discard(resp)
                hops += 1
                if hops > hops_allowed:
                    raise TransportError(
                        f"too many redirects (more than {hops_allowed}) from {req.url}",
                        image_id=image_id,
                        status=status,
                        url=req.url,
                    )
                req = follow_redirect(
                    req, status, location, allowed_hosts=self.allowed_hosts, image_id=image_id
                )
                continue

            if status in RETRY_STATUSES and req.method in IDEMPOTENT_METHODS and retry < policy.retries:
                asked = (
                    parse_retry_after(resp.headers.get("Retry-After"))
                    if status in RETRY_AFTER_STATUSES
                    else None
                )
                delay = policy.backoff(retry + 1) if asked is None else asked
                left = deadline.remaining()
                too_long = (asked is not None and asked > policy.retry_after_max) or (
                    left is not None and delay >= left
                )
                if not too_long:
                    _body.discard(resp)
                    retry += 1
                    error = TransportError(
                        f"HTTP {status}{_reason(resp)} from {req.url}",
                        image_id=image_id,
                        status=status,
                        url=req.url,
                    )
                    self._wait(delay, ctx, deadline, req.url, error, None)
                    continue
                # Waiting as asked would overrun the time left: give up now.

            if status >= 400:
                raise self._status_error(resp, req.url, ctx, deadline, image_id)
            return resp, req

    def _wait(
        self,
        seconds: float,
        ctx: LoadContext | None,
        deadline: Deadline,
        url: str,
        error: LoadstoneError,
        cause: BaseException | None,
    ) -> None:
        """Sleep before a retry; give up with ``error`` if the time left is shorter."""
        left = deadline.remaining()
        if left is not None and seconds >= left:
            raise error from cause
        if sleep(seconds, ctx):
            stop = interruption(ctx, deadline, url)
            if stop is not None:
                raise stop from cause

    def _status_error(
        self,
        resp: HTTPResponse,
        url: str,
        ctx: LoadContext | None,
        deadline: Deadline,
        image_id: str | None,
    ) -> LoadstoneError:
        snippet = _body.read_snippet(resp)
        _body.discard(resp)
        stop = interruption(ctx, deadline, url)
        if stop is not None:
            return stop
        message = f"HTTP {resp.status}{_reason(resp)} from {url}"
        if snippet:
            message += f": {snippet}"
        return TransportError(message, image_id=image_id, status=resp.status, url=url)

    def _read(
        self,
        resp: HTTPResponse,
        url: str,
        ctx: LoadContext | None,
        deadline: Deadline,
        limit: int,
        image_id: str | None,
    ) -> bytes | bytearray:
        def check() -> None:
            stop = interruption(ctx, deadline, url)
            if stop is not None:
                raise stop

        def on_error(exc: BaseException, loaded: int, total: int | None) -> LoadstoneError:
            stop = interruption(ctx, deadline, url)
            if stop is not None:
                return stop
            of = f" of {total}" if total is not None else ""
            return _errors.translate(
                exc,
                url=url,
                image_id=image_id,
                status=resp.status,
                read_timeout=self.read_timeout,
                during="body",
                detail=f" (after {loaded}{of} bytes)",
            )

        return _body.read_body(
            resp,
            url=url,
            max_bytes=limit,
            image_id=image_id,
            check=check,
            on_error=on_error,
            progress=ctx.report_progress if ctx is not None else None,
        )


def _reason(resp: HTTPResponse) -> str:
    return f" {resp.reason}" if resp.reason else ""


def _with_retries(policy: RetryPolicy, retries: int) -> RetryPolicy:
    return RetryPolicy(
        retries=retries,
        backoff_base=policy.backoff_base,
        backoff_max=policy.backoff_max,
        retry_after_max=policy.retry_after_max,
    )


@contextlib.contextmanager
def _guarding(guard: RequestGuard | None) -> Iterator[None]:
    if guard is None:
        with no_guard():
            yield
    else:
        with guard.active():
            yield


def _abandon(resp: HTTPResponse) -> None:
    """Drop a response we stopped reading: its connection (socket) is closed, never reused."""
    try:
        resp.close()
    finally:
        resp.release_conn()


# -- the process-wide default client ----------------------------------------------
_default: HttpClient | None = None
_default_lock = threading.Lock()


def default_client() -> HttpClient:
    """The shared client, created on first use (so importing costs no pools)."""
    global _default
    client = _default
    if client is None:
        with _default_lock:
            client = _default
            if client is None:
                client = _default = HttpClient()
    return client


def set_default_client(client: HttpClient | None) -> HttpClient | None:
    """Replace the shared client (``None``: a fresh one on next use); returns the old one."""
    global _default
    with _default_lock:
        previous, _default = _default, client
    return previous


def request(method: str, url: str, **kwargs: Any) -> HttpResponse:
    """``default_client().request(method, url, **kwargs)``."""
    return default_client().request(method, url, **kwargs)


def get(url: str, **kwargs: Any) -> HttpResponse:
    """``default_client().get(url, **kwargs)``."""
    return default_client().get(url, **kwargs)
