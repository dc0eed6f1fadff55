"""Pooled connections that another thread can interrupt.

Cancelling a load must *stop* a request that is blocked in ``recv()``
(waiting for headers or for body bytes), not merely forget its result.  The
only portable way to wake such a thread is to shut its socket down, so each
request runs under a :class:`RequestGuard` that knows the connection it is
using and shuts that socket down when the load is cancelled or the request's
deadline passes.

Connections come from urllib3's pools and go back to them, so ownership is
tracked under one lock: a guard only ever touches the connection it currently
owns, and a connection whose socket was shut down ("poisoned") is reconnected
before anyone reuses it.  A cancelled socket is therefore never reused.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import selectors
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from urllib3 import PoolManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from .._context import LoadContext
from ..toolkit.timers import call_at

__all__ = [
    "InterruptibleHTTPConnection",
    "InterruptibleHTTPSConnection",
    "RequestGuard",
    "new_pool_manager",
]

# Serialises "who owns this connection" against "shut the owner's socket down".
_LOCK = threading.Lock()

_active_guard: contextvars.ContextVar[RequestGuard | None] = contextvars.ContextVar(
    "loadstone_http_guard", default=None
)


def _noop() -> None:
    return None


class RequestGuard:
    """Interrupts one request's socket when its load is cancelled or its deadline passes.

    ``reason`` is ``None`` until then, afterwards ``"cancelled"`` or ``"deadline"``.
    Use as ``with guard.active(): ...`` around the request and call
    :meth:`close` when the body has been read.
    """

    def __init__(self, ctx: LoadContext | None, deadline_at: float | None) -> None:
        self.reason: str | None = None
        self._conn: InterruptibleHTTPConnection | None = None
        self._waker: socket.socket | None = None  # written to wake a connect() in progress
        # on_cancel may call back at once (already cancelled): state is set first.
        self._unregister_cancel: Callable[[], None] = (
            ctx.on_cancel(self._on_cancel) if ctx is not None else _noop
        )
        self._unregister_deadline: Callable[[], None] = (
            call_at(deadline_at, self._on_deadline).cancel if deadline_at is not None else _noop
        )

    def _on_cancel(self) -> None:
        self._interrupt("cancelled")

    def _on_deadline(self) -> None:
        self._interrupt("deadline")

    def _interrupt(self, reason: str) -> None:
        with _LOCK:
            if self.reason is None:
                self.reason = reason
            conn = self._conn
            if conn is not None and conn.ls_owner is self:
                _kill(conn)
            if self._waker is not None:
                _poke(self._waker)

    def connecting(self, waker: socket.socket | None) -> None:
        """A connect() waits on ``waker``'s peer: a cancel writes to it (None once connected)."""
        with _LOCK:
            self._waker = waker
            if waker is not None and self.reason is not None:
                _poke(waker)

    @contextmanager
    def active(self) -> Iterator[RequestGuard]:
        """Make connections used inside the block report to this guard."""
        token = _active_guard.set(self)
        try:
            yield self
        finally:
            _active_guard.reset(token)

    def close(self) -> None:
        """Stop watching: the request is over (its connection may be pooled now)."""
        self._unregister_cancel()
        self._unregister_deadline()
        with _LOCK:
            conn, self._conn = self._conn, None
            if conn is not None and conn.ls_owner is self:
                conn.ls_owner = None


@contextmanager
def no_guard() -> Iterator[None]:
    """Run a request that nothing can interrupt (no load, no deadline)."""
    token = _active_guard.set(None)
    try:
        yield
    finally:
        _active_guard.reset(token)


def _kill(conn: InterruptibleHTTPConnection) -> None:
    """Shut the connection's socket down (caller holds ``_LOCK``).

    Only ``shutdown`` here: it wakes a thread blocked in recv/send at once,
    while closing a descriptor that another thread is blocked on could let
    the number be reused under it.  The owning thread closes the connection.
    """
    conn.ls_poisoned = True
    sock = conn.sock if conn.sock is not None else conn.ls_raw_sock
    if sock is not None:
        # OSError: already closed or not connected, so nothing to wake.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _poke(waker: socket.socket) -> None:
    with contextlib.suppress(OSError):
        waker.send(b"x")


def _connect(address: tuple[str, int], timeout: float | None, source_address: tuple[str, int] | None,
             socket_options: Any, wake: socket.socket) -> socket.socket:
    """``socket.create_connection`` whose wait for the peer also ends when ``wake`` is readable.

    A thread blocked in ``connect()`` cannot be woken by shutting the socket
    down; a non-blocking connect waited for together with a wake-up socket
    can (a cancel writes to its peer).
    """
    host, port = address
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            if source_address:
                sock.bind(source_address)
            sock.setblocking(False)
            code = sock.connect_ex(sockaddr)
            if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                raise OSError(code, os.strerror(code))
            if code != 0:
                with selectors.DefaultSelector() as selector:
                    selector.register(sock, selectors.EVENT_WRITE)
                    selector.register(wake, selectors.EVENT_READ)
                    ready = {key.fileobj for key, _ in selector.select(timeout)}
                if wake in ready:
                    raise OSError(errno.ECANCELED, "connect interrupted: the load was cancelled")
                if sock not in ready:
                    raise TimeoutError("timed out")
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise OSError(code, os.strerror(code))
            sock.settimeout(timeout)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error if error is not None else OSError(f"getaddrinfo returned nothing for {host!r}")


def _claim(conn: InterruptibleHTTPConnection) -> None:
    """Record that the current request (its guard, or none) now uses ``conn``."""
    guard = _active_guard.get()
    with _LOCK:
        if conn.ls_poisoned and (guard is None or conn.ls_owner is not guard):
            # A previous owner's cancel shut this socket down after the
            # connection went back to the pool: start afresh (http.client
            # reconnects on send when ``sock`` is None).  If the poison is
            # our own guard's, the dead socket stays so this request fails.
            conn.close()
        conn.ls_owner = guard
        if guard is not None:
            guard._conn = conn
            if guard.reason is not None:
                _kill(conn)


class InterruptibleHTTPConnection(HTTPConnection):
    """An urllib3 connection whose socket a :class:`RequestGuard` can shut down."""

    ls_owner: RequestGuard | None = None
    ls_poisoned: bool = False
    ls_raw_sock: socket.socket | None = None

    def _new_conn(self) -> socket.socket:
        guard = _active_guard.get()
        sock = super()._new_conn() if guard is None else self._connect_for(guard)
        # Known before ``self.sock`` is set (TLS handshakes happen in between).
        self.ls_raw_sock = sock
        _claim(self)
        return sock

    def _connect_for(self, guard: RequestGuard) -> socket.socket:
        """Connect so that the guard's cancel or deadline ends the wait at once (as urllib3 would)."""
        wake, waker = socket.socketpair()
        guard.connecting(waker)
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
        try:
            return _connect((self._dns_host, self.port), timeout, self.source_address,
                            self.socket_options, wake)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})") from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        finally:
            guard.connecting(None)
            wake.close()
            waker.close()

    def connect(self) -> None:
        super().connect()
        _claim(self)  # a cancel during the TLS handshake could not reach the socket yet

    def request(self, *args: Any, **kwargs: Any) -> None:
        _claim(self)
        super().request(*args, **kwargs)

    @property
    def is_connected(self) -> bool:
        # The pool checks this before reuse; a poisoned socket is dead.
        return not self.ls_poisoned and super().is_connected

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.ls_poisoned = False
            self.ls_raw_sock = None


class InterruptibleHTTPSConnection(InterruptibleHTTPConnection, HTTPSConnection):
    """The TLS variant (the MRO puts the interruptible overrides before HTTPSConnection's)."""


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = InterruptibleHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = InterruptibleHTTPSConnection


def new_pool_manager(**kwargs: Any) -> PoolManager:
    """A PoolManager whose pools hand out interruptible connections."""
    manager = PoolManager(**kwargs)
    manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    return manager
