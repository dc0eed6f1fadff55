"""Tests of loadstone.http against real servers on 127.0.0.1.

The servers are raw sockets (not http.server) so a test controls every byte
and every stall.  Each test starts its own servers through the ``serve``
fixture, which stops them, closes their sockets and joins their threads;
every wait in here is bounded.
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# tests/loopback.py: the raw-socket server shared with the web plugin's tests
from loopback import Connection as Conn
from loopback import Handler, Server, chunked, response
from loopback import Request as Req
from urllib3.exceptions import NewConnectionError

from loadstone import LoadContext, http, use_load_context
from loadstone.errors import (
    LoadCancelledError,
    LoadTimeoutError,
    PolicyDeniedError,
    ResourceLimitError,
    TransportError,
)
from loadstone.http import HttpClient, HttpRequest, HttpResponse, parse_retry_after
from loadstone.http._connection import InterruptibleHTTPConnection, RequestGuard, no_guard
from loadstone.http._redirect import follow_redirect, host_allowed


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(handler: Handler, tls: ssl.SSLContext | None = None) -> Server:
        server = Server(handler, tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client() -> Iterator[HttpClient]:
    c = HttpClient(retries=3, backoff_base=0.01, backoff_max=0.05, connect_timeout=2, read_timeout=5)
    yield c
    c.close()


def ok(body: bytes, **headers: str) -> Handler:
    def handler(req: Req, conn: Conn) -> None:
        conn.send(response(200, body, headers))

    return handler


class RequestThread:
    """Runs one request on a worker thread inside a LoadContext."""

    def __init__(self, fn: Callable[[], HttpResponse], ctx: LoadContext) -> None:
        self.fn = fn
        self.ctx = ctx
        self.result: HttpResponse | None = None
        self.error: BaseException | None = None
        self.finished_at: float | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with use_load_context(self.ctx):
            try:
                self.result = self.fn()
            except BaseException as exc:
                self.error = exc
            finally:
                self.finished_at = time.monotonic()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "request thread did not finish"


def run_in_context(fn: Callable[[], HttpResponse], ctx: LoadContext) -> RequestThread:
    return RequestThread(fn, ctx)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# ---------------------------------------------------------------------------
# plain requests
# ---------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


@pytest.mark.timeout(20)
def test_get_with_content_length_reads_into_a_bytearray(serve, client):
    server = serve(ok(PAYLOAD, **{"Content-Type": "application/octet-stream"}))
    resp = client.get(server.url("/img"))
    assert resp.status == 200
    assert isinstance(resp.content, bytearray)  # the preallocated readinto path
    assert resp.content == PAYLOAD
    assert resp.url == server.url("/img")
    assert resp.headers["content-type"] == "application/octet-stream"
    assert resp.content_type == "application/octet-stream"
    assert resp.elapsed_ms > 0
    assert server.requests[0].method == "GET"
    assert server.requests[0].headers["user-agent"].startswith("loadstone")


@pytest.mark.timeout(20)
def test_get_chunked(serve, client):
    parts = [PAYLOAD[:1000], PAYLOAD[1000:70000], PAYLOAD[70000:]]

    def handler(req: Req, conn: Conn) -> None:
        conn.send(chunked(parts, {"Content-Type": "text/plain; charset=latin-1"}))

    server = serve(handler)
    resp = client.get(server.url())
    assert resp.content == PAYLOAD
    assert resp.content_type == "text/plain"
    assert resp.charset == "latin-1"


@pytest.mark.timeout(20)
def test_text_and_empty_body(serve, client):
    server = serve(ok("héllo".encode(), **{"Content-Type": "text/plain; charset=utf-8"}))
    assert client.get(server.url()).text == "héllo"
    empty = serve(ok(b""))
    resp = client.get(empty.url())
    assert resp.status == 200 and resp.content == b""


@pytest.mark.timeout(20)
def test_body_delimited_by_connection_close(serve, client):
    def handler(req: Req, conn: Conn) -> None:
        conn.send(response(200, b"until-close" * 1000, {"Connection": "close"}, length=False))
        conn.close()

    server = serve(handler)
    assert client.get(server.url()).content == b"until-close" * 1000
    assert client.get(server.url()).content == b"until-close" * 1000
    assert server.connections == 2


@pytest.mark.timeout(20)
def test_connections_are_pooled(serve, client):
    server = serve(ok(b"x" * 1000))
    for _ in range(3):
        assert client.get(server.url()).content == b"x" * 1000
    assert server.connections == 1
    assert server.attempts == 3


@pytest.mark.timeout(20)
def test_pooled_connection_reused_after_chunked_and_empty_bodies(serve, client):
    def handler(req: Req, conn: Conn) -> None:
        if req.path == "/chunked":
            conn.send(chunked([b"ab", b"cd"]))
        else:
            conn.send(response(204, b"", length=False))

    server = serve(handler)
    assert client.get(server.url("/chunked")).content == b"abcd"
    assert client.get(server.url("/empty")).status == 204
    assert client.get(server.url("/chunked")).content == b"abcd"
    assert server.connections == 1


@pytest.mark.timeout(20)
def test_head_ignores_content_length_for_the_cap(serve, client):
    def handler(req: Req, conn: Conn) -> None:
        conn.send(response(200, b"", {"Content-Length": str(10**12)}, length=False))

    server = serve(handler)
    resp = client.request("head", server.url(), max_bytes=10)
    assert resp.status == 200 and resp.content == b""
    assert server.requests[0].method == "HEAD"


@pytest.mark.timeout(20)
def test_post_sends_body(serve, client):
    def handler(req: Req, conn: Conn) -> None:
        conn.send(response(200, req.body[::-1]))

    server = serve(handler)
    resp = client.request("POST", server.url(), body=b"abc", headers={"Content-Type": "text/plain"})
    assert resp.content == b"cba"
    assert server.requests[0].headers["content-length"] == "3"


@pytest.mark.timeout(20)
def test_default_client_and_module_functions(serve):
    server = serve(ok(b"module"))
    mine = HttpClient(headers={"X-Default": "1"})
    previous = http.set_default_client(mine)
    try:
        assert http.default_client() is mine
        assert http.get(server.url()).content == b"module"
        assert http.request("GET", server.url()).content == b"module"
        assert server.requests[0].headers["x-default"] == "1"
    finally:
        http.set_default_client(previous)
        mine.close()


def test_default_client_is_created_once():
    previous = http.set_default_client(None)
    try:
        clients: list[HttpClient] = []
        threads = [threading.Thread(target=lambda: clients.append(http.default_client())) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        assert len({id(c) for c in clients}) == 1
        clients[0].close()
    finally:
        http.set_default_client(previous)


def test_import_loadstone_does_not_import_urllib3():
    code = "import sys, loadstone; assert 'urllib3' not in sys.modules, 'urllib3 imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---------------------------------------------------------------------------
# headers and hooks
# ---------------------------------------------------------------------------


def needs_token(token: str) -> Handler:
    def handler(req: Req, conn: Conn) -> None:
        if req.headers.get("authorization") == f"Bearer {token}":
            conn.send(response(200, b"secret"))
        else:
            conn.send(response(401, b"no", reason="Unauthorized"))

    return handler


@pytest.mark.timeout(20)
def test_per_call_headers_override_client_headers(serve):
    server = serve(ok(b""))
    with HttpClient(headers={"X-A": "client", "X-B": "client"}) as c:
        c.get(server.url(), headers={"x-b": "call"})
    headers = server.requests[0].headers
    assert headers["x-a"] == "client"
    assert headers["x-b"] == "call"


@pytest.mark.timeout(20)
def test_before_send_sync(serve, client):
    server = serve(needs_token("t1"))

    def add_auth(request: HttpRequest) -> None:
        request.headers["Authorization"] = "Bearer t1"

    with pytest.raises(TransportError) as info:
        client.get(server.url())
    assert info.value.status == 401
    assert client.get(server.url(), before_send=add_auth).content == b"secret"
    with HttpClient(before_send=add_auth) as c:
        assert c.get(server.url()).content == b"secret"


@pytest.mark.timeout(20)
def test_before_send_async(serve, client):
    server = serve(needs_token("t2"))

    async def add_auth(request: HttpRequest) -> None:
        await asyncio.sleep(0.01)
        request.headers["Authorization"] = "Bearer t2"

    assert client.get(server.url(), before_send=add_auth).content == b"secret"


@pytest.mark.timeout(20)
def test_async_before_send_called_from_inside_a_running_loop(serve, client):
    server = serve(needs_token("t3"))

    async def add_auth(request: HttpRequest) -> None:
        await asyncio.sleep(0)
        request.headers["Authorization"] = "Bearer t3"

    async def main() -> bytes | bytearray:
        # A blocking call from a coroutine (bad style, but it must not deadlock).
        return client.get(server.url(), before_send=add_auth).content

    assert asyncio.run(main()) == b"secret"


@pytest.mark.timeout(20)
def test_before_send_failure_is_a_transport_error(serve, client):
    server = serve(ok(b""))

    def broken(request: HttpRequest) -> None:
        raise OSError("token service down")

    with pytest.raises(TransportError, match="token service down") as info:
        client.get(server.url(), before_send=broken)
    assert isinstance(info.value.__cause__, OSError)
    assert server.attempts == 0


# ---------------------------------------------------------------------------
# statuses and errors
# ---------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("status,reason", [(404, "Not Found"), (500, "Internal Server Error")])
def test_error_status_is_a_transport_error(serve, client, status, reason):
    server = serve(
        lambda req, conn: conn.send(response(status, b"nothing here", {"Content-Type": "text/plain"}, reason))
    )
    with pytest.raises(TransportError) as info:
        client.get(server.url("/missing"))
    err = info.value
    assert err.status == status
    assert err.url == server.url("/missing")
    assert str(status) in str(err) and reason in str(err)
    assert "nothing here" in str(err)
    assert server.attempts == 1  # 404/500 are not retried


@pytest.mark.timeout(20)
def test_image_id_from_the_load_context(serve, client):
    server = serve(lambda req, conn: conn.send(response(404, b"", reason="Not Found")))
    with use_load_context(LoadContext("web:x")), pytest.raises(TransportError) as info:
        client.get(server.url())
    assert info.value.image_id == "web:x"


@pytest.mark.timeout(20)
def test_connection_refused_is_a_transport_error_after_retries():
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with HttpClient(retries=2, backoff_base=0.01) as c, pytest.raises(TransportError) as info:
        c.get(f"http://127.0.0.1:{port}/")
    assert info.value.status is None
    assert "cannot connect" in str(info.value)
    assert not isinstance(info.value.__cause__, TransportError)
    assert info.value.__cause__ is not None


@pytest.mark.timeout(20)
def test_server_closing_mid_body_is_a_transport_error(serve, client):
    def handler(req: Req, conn: Conn) -> None:
        conn.send(response(200, b"x" * 1000, {"Content-Length": "5000"}, length=False))
        conn.close()

    server = serve(handler)
    with pytest.raises(TransportError, match="mid-body") as info:
        client.get(server.url())
    assert info.value.status == 200
    # the next request works on a fresh connection
    server.handler = ok(b"fine")
    assert client.get(server.url()).content == b"fine"
    assert server.connections == 2


@pytest.mark.timeout(20)
def test_server_closing_mid_chunked_body_is_a_transport_error(serve, client):
    def handler(req: Req, conn: Conn) -> None:
        conn.send(response(200, b"", {"Transfer-Encoding": "chunked"}, length=False) + b"10\r\nabc")
        conn.close()

    server = serve(handler)
    with pytest.raises(TransportError):
        client.get(server.url())


@pytest.mark.timeout(20)
def test_invalid_url_and_scheme(client):
    with pytest.raises(PolicyDeniedError):
        client.get("ftp://example.org/a.png")
    with pytest.raises(PolicyDeniedError):
        client.get("file:///etc/passwd")


# ---------------------------------------------------------------------------
# size caps
# ---------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_size_cap_by_content_length_fails_before_reading(serve, client):
    def handler(req: Req, conn: Conn) -> None:
        conn.send(response(200, b"", {"Content-Length": "5000000"}, length=False))
        conn.stall(10)  # never sends the body: the client must not wait for it

    server = serve(handler)
    started = time.monotonic()
    with pytest.raises(ResourceLimitError):
        client.get(server.url(), max_bytes=1000)
    assert time.monotonic() - started < 2
    assert wait_until(server.peer_closed.is_set, 2), "connection was not closed"


@pytest.mark.timeout(20)
def test_size_cap_while_streaming(serve, client):
    server = serve(lambda req, conn: conn.send(chunked([b"y" * 600] * 10)))
    with pytest.raises(ResourceLimitError):
        client.get(server.url(), max_bytes=1000)
    assert client.get(server.url(), max_bytes=6000).content == b"y" * 6000


@pytest.mark.timeout(20)
def test_client_default_size_cap(serve):
    server = serve(ok(b"z" * 2000))
    with HttpClient(max_bytes=1999) as c:
        with pytest.raises(ResourceLimitError):
            c.get(server.url())
        assert len(c.get(server.url(), max_bytes=2000).content) == 2000


@pytest.mark.timeout(20)
def test_gzip_body_is_decoded_and_capped_after_decoding(serve, client):
    raw = b"\0" * 200_000
    packed = gzip.compress(raw)
    server = serve(ok(packed, **{"Content-Encoding": "gzip"}))
    assert client.get(server.url()).content == raw
    with pytest.raises(ResourceLimitError):
        client.get(server.url(), max_bytes=100_000)  # a decompression bomb stops early


# ---------------------------------------------------------------------------
# timeouts
# ---------------------------------------------------------------------------


def never_answers(req: Req, conn: Conn) -> None:
    conn.stall(10)


def stalls_mid_body(req: Req, conn: Conn) -> None:
    conn.send(response(200, b"x" * 100, {"Content-Length": "100000"}, length=False))
    conn.stall(10)


def trickles(req: Req, conn: Conn) -> None:
    conn.send(response(200, b"", {"Content-Length": "100000"}, length=False))
    for _ in range(400):
        if conn.server.stopping.is_set() or conn.wait_peer_close(0.02):
            return
        conn.send(b"x")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("handler", [never_answers, stalls_mid_body], ids=["before-headers", "mid-body"])
def test_read_timeout(serve, handler):
    server = serve(handler)
    with HttpClient(read_timeout=0.3, retries=3) as c:
        started = time.monotonic()
        with pytest.raises(LoadTimeoutError):
            c.get(server.url())
        elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 2.0
    assert server.attempts == 1  # read timeouts are not retried


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "handler", [never_answers, stalls_mid_body, trickles], ids=["before-headers", "mid-body", "trickle"]
)
def test_total_timeout(serve, client, handler):
    server = serve(handler)
    started = time.monotonic()
    with pytest.raises(LoadTimeoutError):
        client.get(server.url(), timeout=0.5)
    elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 1.5
    assert wait_until(server.peer_closed.is_set, 2), "timed-out connection was not closed"


@pytest.mark.timeout(20)
def test_client_default_total_timeout(serve):
    server = serve(never_answers)
    with HttpClient(timeout=0.3) as c:
        started = time.monotonic()
        with pytest.raises(LoadTimeoutError):
            c.get(server.url())
        assert time.monotonic() - started < 1.5


@pytest.mark.timeout(20)
def test_load_context_deadline_bounds_the_request(serve, client):
    server = serve(trickles)
    ctx = LoadContext("web:slow", timeout=0.5)
    started = time.monotonic()
    with use_load_context(ctx), pytest.raises(LoadTimeoutError) as info:
        client.get(server.url(), timeout=30)
    assert time.monotonic() - started < 1.5
    assert info.value.image_id == "web:slow"
    assert ctx.cancelled and isinstance(ctx.reason, LoadTimeoutError)


@pytest.mark.timeout(20)
def test_connect_timeout():
    # A listener that never accepts, with its backlog filled: new SYNs go unanswered.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.05)
        probe = socket.socket()
        probe.settimeout(0.2)
        try:
            probe.connect(("127.0.0.1", port))
        except (TimeoutError, OSError):
            pass
        else:
            pytest.skip("this kernel accepts connections beyond the backlog")
        finally:
            probe.close()
        with HttpClient(connect_timeout=0.3, retries=1, backoff_base=0.01) as c:
            started = time.monotonic()
            with pytest.raises(LoadTimeoutError, match="connect"):
                c.get(f"http://127.0.0.1:{port}/")
            elapsed = time.monotonic() - started
        assert 0.5 <= elapsed < 2.5  # two attempts of 0.3 s
    finally:
        for s in fillers:
            s.close()
        listener.close()


# ---------------------------------------------------------------------------
# retries
# ---------------------------------------------------------------------------


def fails_then_ok(failures: list[bytes]) -> Handler:
    def handler(req: Req, conn: Conn) -> None:
        n = conn.server.attempts
        conn.send(failures[n - 1] if n <= len(failures) else response(200, b"done"))

    return handler


@pytest.mark.timeout(20)
def test_retry_on_503_honours_retry_after(serve, client):
    server = serve(fails_then_ok([response(503, b"busy", {"Retry-After": "1"}, "Service Unavailable")]))
    started = time.monotonic()
    resp = client.get(server.url())
    elapsed = time.monotonic() - started
    assert resp.content == b"done"
    assert server.attempts == 2
    assert 0.9 <= elapsed < 3
    assert server.connections == 1  # the small 503 body was drained, the connection kept


@pytest.mark.timeout(20)
def test_retry_after_as_http_date(serve, client):
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 5))
    server = serve(fails_then_ok([response(503, b"", {"Retry-After": when}, "Service Unavailable")]))
    assert client.get(server.url()).content == b"done"
    assert server.attempts == 2


@pytest.mark.timeout(20)
@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retry_statuses_with_backoff(serve, client, status):
    server = serve(fails_then_ok([response(status, b"", reason="Busy")] * 2))
    assert client.get(server.url()).content == b"done"
    assert server.attempts == 3


@pytest.mark.timeout(20)
def test_retries_exhausted(serve):
    server = serve(lambda req, conn: conn.send(response(503, b"", {"Retry-After": "0"}, "Busy")))
    with HttpClient(retries=2) as c, pytest.raises(TransportError) as info:
        c.get(server.url())
    assert info.value.status == 503
    assert server.attempts == 3


@pytest.mark.timeout(20)
def test_retry_after_too_long_gives_up_at_once(serve):
    server = serve(
        lambda req, conn: conn.send(response(429, b"", {"Retry-After": "3600"}, "Too Many Requests"))
    )
    with HttpClient(retries=3) as c:
        started = time.monotonic()
        with pytest.raises(TransportError) as info:
            c.get(server.url())
        assert time.monotonic() - started < 0.5
    assert info.value.status == 429
    assert server.attempts == 1


@pytest.mark.timeout(20)
def test_retry_after_longer_than_time_left_gives_up_at_once(serve, client):
    server = serve(lambda req, conn: conn.send(response(503, b"", {"Retry-After": "5"}, "Busy")))
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        client.get(server.url(), timeout=2)
    assert time.monotonic() - started < 0.5
    assert info.value.status == 503
    assert server.attempts == 1


@pytest.mark.timeout(20)
def test_non_idempotent_methods_are_not_retried(serve, client):
    server = serve(lambda req, conn: conn.send(response(503, b"", {"Retry-After": "0"}, "Busy")))
    with pytest.raises(TransportError) as info:
        client.request("POST", server.url(), body=b"x")
    assert info.value.status == 503
    assert server.attempts == 1


@pytest.mark.timeout(20)
def test_per_call_retries(serve, client):
    server = serve(lambda req, conn: conn.send(response(502, b"", reason="Bad Gateway")))
    with pytest.raises(TransportError):
        client.get(server.url(), retries=0)
    assert server.attempts == 1


@pytest.mark.timeout(20)
def test_retry_on_connection_reset(serve, client):
    def handler(req: Req, conn: Conn) -> None:
        if conn.server.attempts == 1:
            conn.close()  # hang up without answering
        else:
            conn.send(response(200, b"second"))

    server = serve(handler)
    assert client.get(server.url()).content == b"second"
    assert server.attempts == 2


@pytest.mark.timeout(20)
def test_cancel_interrupts_a_retry_wait(serve, client):
    server = serve(lambda req, conn: conn.send(response(503, b"", {"Retry-After": "10"}, "Busy")))
    ctx = LoadContext("web:retry")
    runner = run_in_context(lambda: client.get(server.url()), ctx)
    assert wait_until(lambda: server.attempts == 1, 5)
    time.sleep(0.1)
    cancelled_at = time.monotonic()
    ctx.cancel()
    runner.join(2)
    assert isinstance(runner.error, LoadCancelledError)
    assert runner.finished_at is not None and runner.finished_at - cancelled_at < 1


def test_parse_retry_after():
    now = time.time()
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("120") == 120
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 30))
    assert 28 <= (parse_retry_after(date, now=now) or 0) <= 31
    past = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now - 30))
    assert parse_retry_after(past, now=now) == 0


# ---------------------------------------------------------------------------
# redirects
# ---------------------------------------------------------------------------


def redirect(location: str, status: int = 302) -> bytes:
    return response(status, b"", {"Location": location}, reason="Found")


def echo_auth(req: Req, conn: Conn) -> None:
    seen = f"{req.method} auth={req.headers.get('authorization')} cookie={req.headers.get('cookie')}"
    conn.send(response(200, seen.encode()))


@pytest.mark.timeout(20)
def test_redirect_same_host_keeps_authorization(serve, client):
    def handler(req: Req, conn: Conn) -> None:
        if req.path == "/start":
            conn.send(redirect("/final", 301))
        else:
            echo_auth(req, conn)

    server = serve(handler)
    resp = client.get(server.url("/start"), headers={"Authorization": "Bearer a", "Cookie": "c=1"})
    assert resp.content == b"GET auth=Bearer a cookie=c=1"
    assert resp.url == server.url("/final")
    assert server.connections == 1


@pytest.mark.timeout(20)
def test_redirect_to_other_host_drops_credentials(serve, client):
    other = serve(echo_auth)
    server = serve(lambda req, conn: conn.send(redirect(other.url("/x", host="localhost"), 307)))
    resp = client.get(
        server.url("/start"),
        headers={"Authorization": "Bearer a", "Cookie": "c=1", "Proxy-Authorization": "p", "X-Keep": "1"},
    )
    assert resp.content == b"GET auth=None cookie=None"
    assert resp.url == other.url("/x", host="localhost")
    forwarded = other.requests[0].headers
    assert "proxy-authorization" not in forwarded
    assert forwarded["x-keep"] == "1"


@pytest.mark.timeout(20)
def test_redirect_to_other_port_drops_credentials(serve, client):
    other = serve(echo_auth)
    server = serve(lambda req, conn: conn.send(redirect(other.url("/x"))))
    assert client.get(server.url(), headers={"Authorization": "Bearer a"}).content.startswith(
        b"GET auth=None"
    )


@pytest.mark.timeout(20)
def test_redirect_loop_is_a_transport_error(serve, client):
    server = serve(lambda req, conn: conn.send(redirect(req.path)))
    with pytest.raises(TransportError, match="too many redirects") as info:
        client.get(server.url("/loop"))
    assert info.value.status == 302
    assert server.attempts == 6  # the first request and 5 redirects
    with pytest.raises(TransportError):
        client.get(server.url("/loop"), max_redirects=1)
    assert server.attempts == 8


@pytest.mark.timeout(20)
def test_303_after_post_becomes_get(serve, client):
    def handler(req: Req, conn: Conn) -> None:
        if req.path == "/form":
            conn.send(redirect("/result", 303))
        else:
            conn.send(response(200, f"{req.method} {len(req.body)}".encode()))

    server = serve(handler)
    assert client.request("POST", server.url("/form"), body=b"data").content == b"GET 0"


@pytest.mark.timeout(20)
def test_redirects_can_be_turned_off(serve, client):
    server = serve(lambda req, conn: conn.send(redirect("/elsewhere")))
    resp = client.get(server.url(), allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/elsewhere"


@pytest.mark.timeout(20)
def test_allowed_hosts(serve):
    other = serve(echo_auth)
    server = serve(lambda req, conn: conn.send(redirect(other.url("/x", host="localhost"))))
    with HttpClient(allowed_hosts={"127.0.0.1"}) as c:
        with pytest.raises(PolicyDeniedError, match="localhost"):
            c.get(server.url())
        with pytest.raises(PolicyDeniedError):
            c.get(other.url(host="localhost"))
    assert other.attempts == 0


def test_https_to_http_redirect_is_refused():
    req = HttpRequest("GET", "https://example.org/a", headers=http.HttpClient().headers)
    with pytest.raises(PolicyDeniedError, match="https to http"):
        follow_redirect(req, 302, "http://example.org/b", allowed_hosts=None, image_id="x")
    same = follow_redirect(req, 302, "https://example.org/b", allowed_hosts=None, image_id="x")
    assert same.url == "https://example.org/b"


def test_host_allowed_patterns():
    assert host_allowed("a.example.org", {"*.example.org"})
    assert not host_allowed("example.org", {"*.example.org"})
    assert not host_allowed("badexample.org", {"*.example.org"})
    assert host_allowed("EXAMPLE.org", {"example.org"})
    assert host_allowed("anything", None)


# ---------------------------------------------------------------------------
# cancellation
# ---------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("handler", [never_answers, stalls_mid_body], ids=["before-headers", "mid-body"])
def test_cancel_closes_the_socket_and_stops_the_request(serve, handler):
    server = serve(handler)
    with HttpClient(read_timeout=30) as c:
        ctx = LoadContext("web:cancel-me")
        runner = run_in_context(lambda: c.get(server.url()), ctx)
        assert wait_until(lambda: server.attempts == 1, 5)
        time.sleep(0.2)  # let the client block in recv
        assert runner.thread.is_alive()
        cancelled_at = time.monotonic()
        ctx.cancel()
        runner.join(2)
        assert runner.finished_at is not None
        assert runner.finished_at - cancelled_at < 1.0
        assert isinstance(runner.error, LoadCancelledError), runner.error
        assert runner.error.image_id == "web:cancel-me"
        assert runner.error.__cause__ is not None  # chained to the socket error
        assert server.peer_closed.wait(1.0), "server did not see the connection closed"

        # the cancelled connection is not reused: a new request opens a new one
        server.handler = ok(b"after")
        assert c.get(server.url()).content == b"after"
        assert server.connections == 2


@pytest.mark.timeout(20)
def test_cancel_with_a_timeout_reason_raises_load_timeout(serve, client):
    server = serve(never_answers)
    ctx = LoadContext("web:t")
    runner = run_in_context(lambda: client.get(server.url()), ctx)
    assert wait_until(lambda: server.attempts == 1, 5)
    time.sleep(0.1)
    ctx.timeout()
    runner.join(2)
    assert isinstance(runner.error, LoadTimeoutError)


@pytest.mark.timeout(20)
def test_already_cancelled_context_sends_nothing(serve, client):
    server = serve(ok(b""))
    ctx = LoadContext("web:c")
    ctx.cancel()
    with use_load_context(ctx), pytest.raises(LoadCancelledError):
        client.get(server.url())
    assert server.connections == 0


@pytest.mark.timeout(20)
def test_pooled_connection_of_a_finished_load_survives_its_cancel(serve, client):
    server = serve(ok(b"data"))
    ctx = LoadContext("web:done")
    with use_load_context(ctx):
        assert client.get(server.url()).content == b"data"
    ctx.cancel()  # after the request: must not touch the pooled connection
    assert client.get(server.url()).content == b"data"
    assert server.connections == 1


@pytest.mark.timeout(20)
def test_progress_is_reported(serve, client):
    body = b"p" * (3 * 1024 * 1024 + 5)
    server = serve(ok(body))
    seen: list[tuple[int, int | None]] = []
    ctx = LoadContext("web:p", progress=lambda loaded, total: seen.append((loaded, total)))
    with use_load_context(ctx):
        client.get(server.url())
    assert seen[-1] == (len(body), len(body))
    assert len(seen) >= 3
    assert [s[0] for s in seen] == sorted(s[0] for s in seen)


@pytest.mark.timeout(60)
def test_threads_share_one_client_while_loads_are_cancelled(serve):
    body = bytes(range(256)) * 256  # 64 KiB

    def handler(req: Req, conn: Conn) -> None:
        delay = (int(req.path.rsplit("/", 1)[1]) % 5) * 0.005
        conn.server.stopping.wait(delay)
        conn.send(response(200, body))

    server = serve(handler)
    errors: list[BaseException] = []
    outcomes = {"ok": 0, "cancelled": 0}
    lock = threading.Lock()

    with HttpClient(pool_maxsize=4, read_timeout=5) as c:

        def worker(w: int) -> None:
            for i in range(15):
                ctx = LoadContext(f"web:{w}/{i}")
                if i % 3 == 0:  # cancel some loads while they run
                    timer = threading.Timer(0.004 * (i % 4), ctx.cancel)
                    timer.start()
                else:
                    timer = None
                try:
                    with use_load_context(ctx):
                        resp = c.get(server.url(f"/{w}/{i}"))
                    assert resp.content == body
                    with lock:
                        outcomes["ok"] += 1
                except LoadCancelledError:
                    with lock:
                        outcomes["cancelled"] += 1
                except BaseException as exc:
                    errors.append(exc)
                finally:
                    if timer is not None:
                        timer.cancel()
                        timer.join(5)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(50)
        assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:3]
    assert outcomes["ok"] + outcomes["cancelled"] == 120
    assert outcomes["ok"] >= 80  # every uncancelled load succeeded


# ---------------------------------------------------------------------------
# internals worth pinning down
# ---------------------------------------------------------------------------


def test_own_cancel_ends_a_connect_at_once(serve):
    # A cancel that lands before or during connect ends the connect at once with a
    # connection error (never http.client's AttributeError on a closed socket).
    server = serve(ok(b""))
    ctx = LoadContext("web:connect")
    guard = RequestGuard(ctx, None)
    conn = InterruptibleHTTPConnection("127.0.0.1", server.port, timeout=2)
    try:
        with guard.active():
            ctx.cancel()
            started = time.monotonic()
            with pytest.raises(NewConnectionError):
                conn.connect()
            assert time.monotonic() - started < 0.5
    finally:
        guard.close()
        conn.close()


def test_connection_poisoned_by_a_previous_owner_reconnects(serve):
    server = serve(ok(b"fresh"))
    ctx = LoadContext("web:old")
    old = RequestGuard(ctx, None)
    conn = InterruptibleHTTPConnection("127.0.0.1", server.port, timeout=2)
    try:
        with old.active():
            conn.connect()
        ctx.cancel()  # the old owner is cancelled while the connection sits idle
        assert conn.ls_poisoned and not conn.is_connected
        with no_guard():
            conn.request("GET", "/")
            resp = conn.getresponse()
        assert resp.data == b"fresh"
        assert server.connections == 2
    finally:
        old.close()
        conn.close()


def test_response_repr_hides_the_body():
    resp = HttpResponse(200, http.HttpClient().headers, b"x" * 10_000, "http://h/", 1.0)
    assert "xxxx" not in repr(resp)


def test_no_low_level_error_escapes(client):
    with pytest.raises(TransportError):
        client.get("http://[::1")  # malformed URL


# ---------------------------------------------------------------------------
# https
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    return context


@pytest.mark.timeout(20)
def test_https_get_with_a_trusted_certificate(serve, tls, tls_files):
    server = serve(ok(PAYLOAD), tls)
    with HttpClient(ca_certs=str(tls_files[0])) as c:
        for _ in range(2):
            resp = c.get(server.url())
            assert resp.content == PAYLOAD and isinstance(resp.content, bytearray)
    assert server.connections == 1


@pytest.mark.timeout(20)
def test_https_untrusted_certificate_is_a_transport_error(serve, tls):
    server = serve(ok(b""), tls)
    with HttpClient(retries=2) as c, pytest.raises(TransportError, match="TLS") as info:
        c.get(server.url())
    assert isinstance(info.value.__cause__, Exception)
    with HttpClient(verify=False) as c, pytest.warns(Warning):  # urllib3 warns about unverified HTTPS
        assert c.get(server.url()).status == 200


@pytest.mark.timeout(20)
@pytest.mark.parametrize("handler", [never_answers, stalls_mid_body], ids=["before-headers", "mid-body"])
def test_https_cancel_closes_the_socket(serve, tls, tls_files, handler):
    server = serve(handler, tls)
    with HttpClient(ca_certs=str(tls_files[0]), read_timeout=30) as c:
        ctx = LoadContext("wadors:cancel")
        runner = run_in_context(lambda: c.get(server.url()), ctx)
        assert wait_until(lambda: server.attempts == 1, 5)
        time.sleep(0.2)
        cancelled_at = time.monotonic()
        ctx.cancel()
        runner.join(2)
        assert runner.finished_at is not None and runner.finished_at - cancelled_at < 1.0
        assert isinstance(runner.error, LoadCancelledError), runner.error
        assert server.peer_closed.wait(1.0)
        server.handler = ok(b"after")
        assert c.get(server.url()).content == b"after"
        assert server.connections == 2


@pytest.mark.timeout(20)
def test_https_total_timeout_on_a_trickle(serve, tls, tls_files):
    server = serve(trickles, tls)
    with HttpClient(ca_certs=str(tls_files[0])) as c:
        started = time.monotonic()
        with pytest.raises(LoadTimeoutError):
            c.get(server.url(), timeout=0.5)
        assert time.monotonic() - started < 1.5


@pytest.mark.timeout(20)
def test_https_to_http_redirect_is_refused_for_real(serve, tls, tls_files):
    plain = serve(echo_auth)
    secure = serve(lambda req, conn: conn.send(redirect(plain.url("/x"))), tls)
    with HttpClient(ca_certs=str(tls_files[0])) as c, pytest.raises(PolicyDeniedError):
        c.get(secure.url(), headers={"Authorization": "Bearer a"})
    assert plain.attempts == 0
