"""loadstone.http.fetch: load options and plugin settings merged into one request (loopback server)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from loopback import Server, reply

from loadstone import ResourceLimitError, TransportError
from loadstone import http as lhttp
from loadstone.http import HttpClient, HttpRequest, chain_hooks, client_for, fetch, share_key


@pytest.fixture
def server() -> Iterator[Server]:
    served = Server()
    served.route("/a", reply(b"x" * 100, "application/octet-stream"))
    served.route("/flaky", _flaky(served))
    yield served
    served.stop()


@pytest.fixture
def client() -> Iterator[HttpClient]:
    made = HttpClient(retries=0, connect_timeout=2, read_timeout=5)
    yield made
    made.close()


def _flaky(server: Server) -> Any:
    """503 to the first two requests, 200 after."""

    def handler(req: Any, conn: Any) -> None:
        busy = len(server.requests_for("/flaky")) <= 2
        (reply(b"busy", "text/plain", status=503) if busy else reply(b"ok", "text/plain"))(req, conn)

    return handler


def sent(server: Server, path: str = "/a") -> dict[str, str]:
    """The headers of the last request for ``path`` (names lower-cased)."""
    return server.requests_for(path)[-1].headers


def test_the_load_s_headers_win_over_the_plugin_s(server: Server, client: HttpClient) -> None:
    plugin = {"Authorization": "Bearer plugin", "X-Plugin": "1", "x-shared": "plugin"}
    options = {"headers": {"authorization": "Bearer user", "X-User": "2", "X-Shared": "user"}}
    response = fetch(server.url("/a"), options, headers=plugin, client=client)
    assert response.status == 200 and len(response.content) == 100
    headers = sent(server)
    assert headers["authorization"] == "Bearer user"  # whatever the case of either name
    assert headers["x-shared"] == "user"
    assert headers["x-plugin"] == "1" and headers["x-user"] == "2"


def test_accept_wins_over_any_accept_header(server: Server, client: HttpClient) -> None:
    fetch(server.url("/a"), {"headers": {"ACCEPT": "text/html"}}, headers={"accept": "image/png"},
          accept="application/dicom", client=client)
    assert sent(server)["accept"] == "application/dicom"
    fetch(server.url("/a"), {"headers": {"Accept": "image/*"}}, client=client)
    assert sent(server)["accept"] == "image/*"  # without accept=, the load's Accept goes


@pytest.mark.parametrize(("plugin_cap", "load_cap", "fits"), [
    (None, None, True), (100, None, True), (99, None, False), (None, 99, False), (1000, 99, False),
    (99, 1000, False), (1000, 100, True),
])
def test_the_smaller_byte_cap_applies(server: Server, client: HttpClient, plugin_cap: int | None,
                                      load_cap: int | None, fits: bool) -> None:
    options = {} if load_cap is None else {"max_bytes": load_cap}
    if fits:
        assert len(fetch(server.url("/a"), options, max_bytes=plugin_cap, client=client).content) == 100
    else:
        with pytest.raises(ResourceLimitError):
            fetch(server.url("/a"), options, max_bytes=plugin_cap, client=client)


def test_hooks_run_plugin_first_then_load_sync_or_async(server: Server, client: HttpClient) -> None:
    order: list[str] = []

    def plugin_hook(request: HttpRequest) -> None:
        order.append("plugin")
        request.headers["X-Signed"] = "plugin"

    async def load_hook(request: HttpRequest) -> None:
        await asyncio.sleep(0)
        order.append(f"load saw {request.headers.get('X-Signed')}")
        request.headers["X-Signed"] = "load"

    fetch(server.url("/a"), {"before_send": load_hook}, before_send=plugin_hook, client=client)
    assert order == ["plugin", "load saw plugin"]
    assert sent(server)["x-signed"] == "load"


def test_chain_hooks() -> None:
    calls: list[str] = []

    def first(request: HttpRequest) -> None:
        calls.append("first")

    def second(request: HttpRequest) -> None:
        calls.append("second")

    assert chain_hooks(None, None) is None
    assert chain_hooks(first, None) is first and chain_hooks(None, second) is second
    both = chain_hooks(first, second)
    assert both is not None
    request = HttpRequest("GET", "http://h/")
    result = both(request)
    if asyncio.iscoroutine(result):
        asyncio.run(result)
    assert calls == ["first", "second"]


def test_retries_and_timeout_come_from_the_options(server: Server, client: HttpClient) -> None:
    with pytest.raises(TransportError) as caught:
        fetch(server.url("/flaky"), {}, client=client)  # the client retries nothing
    assert caught.value.status == 503
    response = fetch(server.url("/flaky"), {"retries": 1, "timeout": 10}, client=client)
    assert response.content == b"ok"
    assert len(server.requests_for("/flaky")) == 3


def test_client_for_picks_the_load_s_client(client: HttpClient) -> None:
    assert client_for({"http_client": client}) is client
    assert client_for(None) is lhttp.default_client() and client_for({}) is lhttp.default_client()
    with pytest.raises(TypeError, match="http_client"):
        client_for({"http_client": object()})


def test_fetch_uses_the_load_s_client(server: Server, client: HttpClient) -> None:
    tagged = HttpClient(headers={"X-Client": "tagged"}, retries=0)
    try:
        fetch(server.url("/a"), {"http_client": tagged})
        assert sent(server)["x-client"] == "tagged"
        fetch(server.url("/a"), {"http_client": tagged}, client=client)  # the plugin's explicit client wins
        assert "x-client" not in sent(server)
    finally:
        tagged.close()


def test_share_key_tells_which_loads_may_share_a_request(client: HttpClient) -> None:
    def hook(request: HttpRequest) -> None:
        return None

    base = {"headers": {"Authorization": "a", "X-B": "b"}}
    assert share_key(None) == share_key({})
    assert share_key(base) == share_key({"headers": {"x-b": "b", "authorization": "a"}})  # case, order
    assert share_key(base) != share_key({"headers": {"Authorization": "other", "X-B": "b"}})
    assert share_key(base) != share_key({**base, "before_send": hook})
    assert share_key(base) != share_key({**base, "http_client": client})
    assert share_key(base) != share_key({**base, "max_bytes": 10})
    assert share_key({"priority": 3, "timeout": 2}) == share_key({})  # scheduling options do not matter
    hash(share_key({**base, "before_send": hook, "http_client": client}))
