"""Fixtures for the web plugin tests: loopback servers, sample files, clean loadstone state."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import loadstone
from loadstone.http import HttpClient
from loadstone_web import config

from .helpers import Images, Route, Server, make_images, reply


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """``serve(routes=None) -> Server``; every server is stopped at the end of the test."""
    servers: list[Server] = []

    def start(routes: dict[str, Route] | None = None) -> Server:
        server = Server(routes=routes)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    """Every sample file, in memory and written to a folder (made once per session)."""
    made = make_images()
    folder = tmp_path_factory.mktemp("web-images")
    for name, data in made.files.items():
        (folder / name).write_bytes(data)
    made.folder = folder
    return made


@pytest.fixture
def server(serve: Callable[..., Server], images: Images) -> Server:
    """A server with every sample file at ``/<name>`` (Content-Type by extension)."""
    srv = serve()
    for name, data in images.files.items():
        srv.route(f"/{name}", reply(data, images.content_types[name]))
    return srv


@pytest.fixture(autouse=True)
def client() -> Iterator[HttpClient]:
    """The web loader's HttpClient for this test (fast retries, closed after); config and cache reset."""
    http_client = HttpClient(
        retries=2, backoff_base=0.01, backoff_max=0.05, connect_timeout=2, read_timeout=5
    )
    config.reset()
    config.http_client = http_client
    try:
        yield http_client
    finally:
        loadstone.cancel_load_all()
        loadstone.cache.purge()
        config.reset()
        http_client.close()
