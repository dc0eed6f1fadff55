"""A loopback HTTP/1.1 server for tests, on raw sockets.

Raw sockets (not http.server) so a test controls every byte and every
stall: a handler ``(request, connection) -> None`` may answer, close
mid-body or send nothing.  Shared by the core's HTTP tests and the web
plugin's tests; every wait in here is bounded, and ``stop()`` joins every
thread it started.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


Handler = Callable[[Request, "Connection"], None]


class Connection:
    """The server side of one accepted connection."""

    def __init__(self, sock: socket.socket, server: Server) -> None:
        self.sock = sock
        self.server = server
        self.buf = bytearray()
        self.closed = False
        sock.settimeout(0.05)

    def _recv(self) -> bytes | None:
        """One recv; b"" at EOF, None on timeout."""
        try:
            return self.sock.recv(65536)
        except TimeoutError:
            return None
        except OSError:
            return b""

    def read_request(self) -> Request | None:
        while b"\r\n\r\n" not in self.buf:
            if self.server.stopping.is_set():
                return None
            data = self._recv()
            if data is None:
                continue
            if not data:
                self.server.peer_closed.set()
                return None
            self.buf += data
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = bytearray(rest)
        deadline = time.monotonic() + 5
        while len(body) < length and time.monotonic() < deadline:
            data = self._recv()
            if data:
                body += data
            elif data == b"":
                break
        self.buf = bytearray(body[length:])
        return Request(method, path, headers, bytes(body[:length]))

    def send(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(data)

    def stall(self, seconds: float = 10.0) -> bool:
        """Send nothing more; True as soon as the client closes, False after ``seconds`` or on stop."""
        return self.wait_peer_close(seconds)

    def wait_peer_close(self, seconds: float) -> bool:
        """True once the client closed (or reset) the connection, within ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.server.stopping.is_set():
            data = self._recv()
            if data == b"":
                self.server.peer_closed.set()
                return True
        return False

    def close(self) -> None:
        self.closed = True


class Server:
    """A threaded HTTP/1.1 server: one handler function, or handlers by path (``routes``)."""

    def __init__(self, handler: Handler | None = None, tls: ssl.SSLContext | None = None,
                 routes: dict[str, Handler] | None = None) -> None:
        self.handler = handler or self._by_route
        self.routes: dict[str, Handler] = dict(routes or {})
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.peer_closed = threading.Event()
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.connections = 0  # accepted in all
        self.open_connections = 0
        self.threads: list[threading.Thread] = []
        self.socks: list[socket.socket] = []
        self.accept_thread = threading.Thread(target=self._accept, daemon=True)
        self.accept_thread.start()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def route(self, path: str, handler: Handler) -> str:
        """Serve ``path`` with ``handler``; returns its URL."""
        self.routes[path] = handler
        return self.url(path)

    def _by_route(self, req: Request, conn: Connection) -> None:
        self.routes.get(req.path.split("?", 1)[0], not_found)(req, conn)

    def requests_for(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    @property
    def attempts(self) -> int:
        with self.lock:
            return len(self.requests)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open_connections += 1
                self.socks.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            with self.lock:
                self.threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            if self.tls is not None:
                sock.settimeout(5)
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True)
                except OSError:  # the client refused our certificate
                    return
            conn = Connection(sock, self)
            while not conn.closed and not self.stopping.is_set():
                req = conn.read_request()
                if req is None:
                    break
                with self.lock:
                    self.requests.append(req)
                self.handler(req, conn)
                if req.headers.get("connection", "").lower() == "close":
                    break
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            with self.lock:
                self.open_connections -= 1

    def stop(self) -> None:
        self.stopping.set()
        self.accept_thread.join(5)
        self.listener.close()
        with self.lock:
            threads = list(self.threads)
        for thread in threads:
            thread.join(5)
        assert not self.accept_thread.is_alive()
        assert not any(t.is_alive() for t in threads), "server thread leaked"
        for sock in self.socks:
            sock.close()


def response(
    status: int = 200,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    reason: str = "OK",
    length: bool = True,
) -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\n"
    all_headers = dict(headers or {})
    if length:
        all_headers.setdefault("Content-Length", str(len(body)))
    for name, value in all_headers.items():
        head += f"{name}: {value}\r\n"
    return head.encode("latin-1") + b"\r\n" + body


def chunked(parts: list[bytes], headers: dict[str, str] | None = None) -> bytes:
    out = response(headers={"Transfer-Encoding": "chunked", **(headers or {})}, length=False)
    for part in parts:
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\n\r\n"


def reply(body: bytes, content_type: str | None = "application/octet-stream", status: int = 200,
          reason: str = "OK", **headers: str) -> Handler:
    """A handler that answers ``body`` with ``content_type`` (None: no Content-Type header)."""
    all_headers = {k.replace("_", "-"): v for k, v in headers.items()}
    if content_type is not None:
        all_headers["Content-Type"] = content_type

    def handler(req: Request, conn: Connection) -> None:
        conn.send(response(status, body, all_headers, reason))

    return handler


def not_found(req: Request, conn: Connection) -> None:
    conn.send(response(404, b"<html><body>Not Found</body></html>", {"Content-Type": "text/html"},
                       "Not Found"))
