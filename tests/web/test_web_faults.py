"""Faults and bad input: each gives its typed error, leaves no cache entry and no open socket."""

from __future__ import annotations

import gc
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

import loadstone
import loadstone_web._decode
from loadstone import (
    InvalidImageError,
    LoadCancelledError,
    LoadstoneError,
    LoadTimeoutError,
    PolicyDeniedError,
    ResourceLimitError,
    TransportError,
    UnsupportedError,
)
from loadstone.http import HttpClient
from loadstone_web import config

from .helpers import (
    Connection,
    Images,
    Request,
    Route,
    Server,
    open_fds,
    pillow_decode,
    reply,
    response,
    wait_until,
)

TIMEOUT = 20


def fails(image_id: str, expected: type[LoadstoneError], **options: Any) -> LoadstoneError:
    """Load through the cache, expect ``expected``, and check that no cache entry is left."""
    load = loadstone.load_and_cache_image(image_id, **options)
    with pytest.raises(LoadstoneError) as info:
        load.result(TIMEOUT)
    error = info.value
    assert isinstance(error, expected), f"expected {expected.__name__}, got {type(error).__name__}: {error}"
    assert error.image_id == image_id
    assert wait_until(lambda: image_id not in loadstone.cache, 2.0), "failed load stayed in the cache"
    return error


# -- routes -----------------------------------------------------------------------------------
def sequence(*routes: Route) -> Route:
    """The n-th request gets routes[n] (the last one repeats)."""
    calls = iter(range(1 << 30))
    lock = threading.Lock()

    def handler(req: Request, conn: Connection) -> None:
        with lock:
            n = next(calls)
        routes[min(n, len(routes) - 1)](req, conn)

    return handler


def mid_body(data: bytes) -> Route:
    """Promise all of ``data``, send half, close the connection."""
    def handler(req: Request, conn: Connection) -> None:
        head = response(200, data, {"Content-Type": "image/png"})
        conn.send(head[: len(head) - len(data) // 2])
        conn.close()

    return handler


def stall_after_headers(req: Request, conn: Connection) -> None:
    conn.send(response(200, b"\x89PNG\r\n\x1a\n" + b"\x00" * 992, {"Content-Type": "image/png"})[:200])
    conn.stall()
    conn.close()


def stall_before_headers(req: Request, conn: Connection) -> None:
    conn.stall()
    conn.close()


def status(code: int, reason: str, body: bytes = b"", **headers: str) -> Route:
    return reply(body, "text/plain", status=code, reason=reason, **headers)


# -- statuses -------------------------------------------------------------------------------------
def test_404(server: Server) -> None:
    error = fails(server.url("/missing.png"), TransportError)
    assert isinstance(error, TransportError) and error.status == 404
    assert "Not Found" in str(error)
    assert len(server.requests_for("/missing.png")) == 1


def test_500_is_not_retried(serve: Callable[..., Server]) -> None:
    srv = serve({"/a.png": status(500, "Internal Server Error", b"database is down")})
    error = fails(srv.url("/a.png"), TransportError)
    assert isinstance(error, TransportError) and error.status == 500
    assert "database is down" in str(error)
    assert len(srv.requests_for("/a.png")) == 1


def test_429_with_retry_after_is_waited_for(serve: Callable[..., Server], images: Images) -> None:
    srv = serve({"/a.png": sequence(status(429, "Too Many Requests", Retry_After="1"),
                                    reply(images.files["rgb.png"], "image/png"))})
    started = time.monotonic()
    image = loadstone.load_and_cache_image(srv.url("/a.png")).result(TIMEOUT)
    assert time.monotonic() - started >= 0.9
    np.testing.assert_array_equal(image.pixel_data, pillow_decode(images.files["rgb.png"]))
    assert len(srv.requests_for("/a.png")) == 2


def test_429_with_long_retry_after_fails_at_once(serve: Callable[..., Server]) -> None:
    srv = serve({"/a.png": status(429, "Too Many Requests", Retry_After="3600")})
    started = time.monotonic()
    error = fails(srv.url("/a.png"), TransportError)
    assert time.monotonic() - started < 2.0
    assert isinstance(error, TransportError) and error.status == 429
    assert len(srv.requests_for("/a.png")) == 1


def test_429_every_time_gives_up_after_the_retries(serve: Callable[..., Server]) -> None:
    srv = serve({"/a.png": status(429, "Too Many Requests", Retry_After="0")})
    error = fails(srv.url("/a.png"), TransportError)
    assert isinstance(error, TransportError) and error.status == 429
    assert len(srv.requests_for("/a.png")) == 3  # the first try and the client's 2 retries


def test_retries_option(serve: Callable[..., Server]) -> None:
    srv = serve({"/a.png": status(503, "Service Unavailable")})
    fails(srv.url("/a.png"), TransportError, retries=0)
    assert len(srv.requests_for("/a.png")) == 1


def test_connection_refused() -> None:
    listener = Server()
    url = listener.url("/a.png")
    listener.stop()  # nothing listens there any more
    error = fails(url, TransportError)
    assert "connect" in str(error)


# -- broken transfers -------------------------------------------------------------------------------
def test_server_closes_mid_body(serve: Callable[..., Server], images: Images) -> None:
    srv = serve({"/a.png": mid_body(images.files["rgb.png"])})
    error = fails(srv.url("/a.png"), TransportError)
    assert "mid-body" in str(error)


@pytest.mark.parametrize("route", [stall_after_headers, stall_before_headers])
def test_stalled_server_times_out_and_the_socket_is_closed(
    serve: Callable[..., Server], route: Route
) -> None:
    srv = serve({"/a.png": route})
    started = time.monotonic()
    fails(srv.url("/a.png"), LoadTimeoutError, timeout=0.5)
    assert time.monotonic() - started < 2.5
    assert srv.peer_closed.wait(2.0), "the client did not close the stalled connection"


def test_cancel_closes_the_socket(serve: Callable[..., Server]) -> None:
    srv = serve({"/a.png": stall_after_headers})
    url = srv.url("/a.png")
    load = loadstone.load_and_cache_image(url)
    assert wait_until(lambda: srv.connections == 1, 5.0)
    time.sleep(0.05)
    started = time.monotonic()
    assert load.cancel()
    with pytest.raises(LoadCancelledError):
        load.result(TIMEOUT)
    assert srv.peer_closed.wait(2.0), "the cancelled request's socket stayed open"
    assert time.monotonic() - started < 2.0
    assert wait_until(lambda: url not in loadstone.cache, 2.0)


def test_body_over_the_byte_cap(server: Server) -> None:
    fails(server.url("/rgb.png"), ResourceLimitError, max_bytes=1000)
    config.max_bytes = 2000
    error = fails(server.url("/baseline.jpg"), ResourceLimitError)
    assert "cap" in str(error)


# -- redirects and credentials -----------------------------------------------------------------------
def test_redirect_to_another_host_drops_authorization(serve: Callable[..., Server], images: Images) -> None:
    other = serve({"/b.png": reply(images.files["rgb.png"], "image/png")})
    first = serve({"/a.png": reply(b"", None, status=302, reason="Found",
                                   Location=other.url("/b.png", host="localhost"))})

    def sign(request: Any) -> None:
        request.headers["Cookie"] = "session=42"

    image = loadstone.load_and_cache_image(
        first.url("/a.png"), headers={"Authorization": "Bearer secret"}, before_send=sign
    ).result(TIMEOUT)
    np.testing.assert_array_equal(image.pixel_data, pillow_decode(images.files["rgb.png"]))
    (sent,) = first.requests_for("/a.png")
    assert sent.headers["authorization"] == "Bearer secret" and sent.headers["cookie"] == "session=42"
    (forwarded,) = other.requests_for("/b.png")
    assert "authorization" not in forwarded.headers
    assert "cookie" not in forwarded.headers
    assert image.extra["url"] == other.url("/b.png", host="localhost")


def test_redirect_on_the_same_host_keeps_authorization(serve: Callable[..., Server], images: Images) -> None:
    srv = serve({"/b.png": reply(images.files["rgb.png"], "image/png")})
    srv.route("/a.png", reply(b"", None, status=301, reason="Moved Permanently", Location="/b.png"))
    config.headers = {"Authorization": "Basic dTpw"}
    loadstone.load_and_cache_image(srv.url("/a.png")).result(TIMEOUT)
    (forwarded,) = srv.requests_for("/b.png")
    assert forwarded.headers["authorization"] == "Basic dTpw"


def test_redirect_outside_allowed_hosts_is_denied(serve: Callable[..., Server], images: Images) -> None:
    other = serve({"/b.png": reply(images.files["rgb.png"], "image/png")})
    first = serve({"/a.png": reply(b"", None, status=302, reason="Found",
                                   Location=other.url("/b.png", host="localhost"))})
    strict = HttpClient(allowed_hosts=["127.0.0.1"], retries=0)
    config.http_client = strict
    try:
        fails(first.url("/a.png"), PolicyDeniedError)
        assert other.requests_for("/b.png") == []
    finally:
        strict.close()


def test_config_and_load_hooks_both_run(server: Server) -> None:
    seen: list[str] = []

    def configured(request: Any) -> None:
        seen.append("config")
        request.headers["X-Config"] = "1"

    async def per_load(request: Any) -> None:
        seen.append("load")
        request.headers["X-Load"] = "1"

    config.before_send = configured
    loadstone.load_image(server.url("/rgb.png"), before_send=per_load).result(TIMEOUT)
    assert seen == ["config", "load"]
    (sent,) = server.requests_for("/rgb.png")
    assert sent.headers["x-config"] == "1" and sent.headers["x-load"] == "1"


# -- bad bytes ---------------------------------------------------------------------------------------------
def test_gif_when_gif_is_off(server: Server) -> None:
    error = fails(server.url("/anim.gif"), UnsupportedError)
    assert "loadstone_web.config.enable('GIF')" in str(error)


@pytest.mark.parametrize("name", ["truncated.jpg", "truncated.png"])
def test_truncated_images(server: Server, name: str) -> None:
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    error = fails(server.url(f"/{name}"), InvalidImageError)
    assert "truncated" in str(error)


@pytest.fixture
def recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def test_png_bomb_over_the_default_cap(server: Server, recorded_warnings: list[Any]) -> None:
    error = fails(server.url("/bomb.png"), ResourceLimitError)
    assert "12000x8000" in str(error) and "max_pixels" in str(error)
    assert not [w for w in recorded_warnings if issubclass(w.category, PILImage.DecompressionBombWarning)]


def test_png_bomb_over_a_configured_cap(server: Server, recorded_warnings: list[Any]) -> None:
    assert loadstone.load_image(server.url("/small-bomb.png")).result(TIMEOUT).rows == 2000
    config.max_pixels = 1_000_000
    fails(server.url("/small-bomb.png"), ResourceLimitError)
    config.reset()
    fails(server.url("/small-bomb.png"), ResourceLimitError, max_pixels=3_999_999)
    assert not recorded_warnings or not any(
        issubclass(w.category, PILImage.DecompressionBombWarning) for w in recorded_warnings
    )


def test_pillows_lower_limit_wins(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1_000_000)
    error = fails(server.url("/small-bomb.png"), ResourceLimitError)
    assert "PIL.Image.MAX_IMAGE_PIXELS" in str(error)


def test_pillows_guard_is_an_error_too(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the header check, Pillow's own guard fires; it must end the load, not warn and go on.
    monkeypatch.setattr(loadstone_web._decode, "dimensions", lambda data, fmt: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        fails(server.url("/bomb.png"), ResourceLimitError)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        fails(server.url("/bomb.png"), ResourceLimitError)


def pillow_limit() -> int | None:
    return PILImage.MAX_IMAGE_PIXELS


def test_max_pixels_above_pillows_limit_raises_it_until_reset() -> None:
    before = pillow_limit()
    assert before is not None
    config.max_pixels = before * 3
    assert pillow_limit() == before * 3
    config.reset()
    assert pillow_limit() == before
    with config.override(max_pixels=before * 2):
        assert pillow_limit() == before * 2
    assert pillow_limit() == before
    config.max_pixels = 1000  # lowering ours never lowers Pillow's
    assert pillow_limit() == before


# -- no leaked sockets ---------------------------------------------------------------------------------------
def release_pool(client: HttpClient) -> None:
    """Close the client's idle connections.

    urllib3 2.8's ``PoolManager.clear`` (behind ``HttpClient.close``) only drops
    its pools and lets a finalizer close their connections, so anything still
    referring to a pool (a failed load's traceback) keeps its idle sockets open:
    collect first.
    """
    gc.collect()
    client.close()
    gc.collect()


def test_faults_leak_no_socket(serve: Callable[..., Server], images: Images, client: HttpClient) -> None:
    rgb = images.files["rgb.png"]
    srv = serve({
        "/ok.png": reply(rgb, "image/png"),
        "/404": status(404, "Not Found"),
        "/500": status(500, "Internal Server Error", b"oops"),
        "/429": status(429, "Too Many Requests", Retry_After="3600"),
        "/mid": mid_body(rgb),
        "/stall": stall_after_headers,
        "/html": reply(b"<html>oops</html>", "text/html"),
        "/gif": reply(images.files["anim.gif"], "image/gif"),
        "/bomb": reply(images.files["bomb.png"], "image/png"),
        "/truncated": reply(images.files["truncated.jpg"], "image/jpeg"),
        "/big": reply(rgb, "image/png"),
    })
    loadstone.load_image(srv.url("/ok.png")).result(TIMEOUT)  # warm up: imports, pools
    release_pool(client)
    assert wait_until(lambda: srv.open_connections == 0, 5.0)
    baseline = open_fds()

    # (path, error, options, whether the connection must be closed rather than reused)
    faults: list[tuple[str, type[LoadstoneError], dict[str, Any], bool]] = [
        ("/404", TransportError, {}, False),
        ("/500", TransportError, {}, False),
        ("/429", TransportError, {}, False),
        ("/html", InvalidImageError, {}, False),
        ("/gif", UnsupportedError, {}, False),
        ("/bomb", ResourceLimitError, {}, False),
        ("/truncated", InvalidImageError, {}, False),
        ("/mid", TransportError, {}, True),
        ("/stall", LoadTimeoutError, {"timeout": 0.3}, True),
        ("/big", ResourceLimitError, {"max_bytes": 100}, True),
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(2):
            for path, error, options, closes in faults:
                loadstone.load_image(srv.url("/ok.png")).result(TIMEOUT)
                accepted = srv.connections
                fails(srv.url(path), error, **options)
                if closes:  # the client dropped that connection: the server saw it close
                    assert wait_until(lambda: srv.open_connections == 0, 5.0), path
                else:  # the body was drained and the connection went back to the pool
                    loadstone.load_image(srv.url("/ok.png")).result(TIMEOUT)
                    assert srv.connections == accepted, f"{path}: its connection was not reused"
        release_pool(client)
        assert wait_until(lambda: srv.open_connections == 0, 5.0), "a server connection stayed open"
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, [str(w.message) for w in leaks]
    if baseline >= 0:
        assert wait_until(lambda: open_fds() <= baseline, 5.0), f"{open_fds()} fds open, {baseline} before"
