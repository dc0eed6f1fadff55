"""The wadors metadata manager: registration keys, fetching once, errors (scripted server)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest

from loadstone import InvalidImageError, LoadContext, LoadTimeoutError, TransportError, use_load_context
from loadstone_wado import metadata_manager
from loadstone_wado.net import metadata_store
from loadstone_wado.wadors import parse_wadors_id

try:
    from orthanc import FakeServer, Reply, fake_server, no_leaked_threads
except ImportError:  # tests/wado became a package
    from .orthanc import FakeServer, Reply, fake_server, no_leaked_threads  # type: ignore[no-redef]

__all__ = ["fake_server", "no_leaked_threads"]

SERIES = "/dicom-web/studies/1.2/series/3.4"


@pytest.fixture(autouse=True)
def _purge() -> Iterator[None]:
    metadata_manager.purge()
    yield
    metadata_manager.purge()


def instance_json(uid: str, number: int = 1) -> dict[str, Any]:
    return {
        "00080018": {"vr": "UI", "Value": [uid]},
        "00200013": {"vr": "IS", "Value": [number]},
        "00280010": {"vr": "US", "Value": [2]},
        "00280011": {"vr": "US", "Value": [2]},
    }


def json_reply(document: Any, delay: float = 0.0) -> Any:
    def respond(path: str, headers: dict[str, str]) -> Reply:
        time.sleep(delay)
        return Reply(200, {"Content-Type": "application/dicom+json"}, json.dumps(document).encode())
    return respond


@pytest.mark.parametrize("key", [
    "wadors:http://h/dicom-web/studies/1/series/2/instances/3/frames/1",
    "wadors:http://h/dicom-web/studies/1/series/2/instances/3/frames/7?token=x",
    "WADORS:http://h/dicom-web/studies/1/series/2/instances/3",
    "http://h/dicom-web/studies/1/series/2/instances/3/",
])
def test_every_id_of_an_instance_finds_its_entry(key: str) -> None:
    attrs = instance_json("3")
    metadata_manager.add("wadors:http://h/dicom-web/studies/1/series/2/instances/3/frames/2", attrs)
    assert metadata_manager.get(key) is attrs
    assert metadata_manager.get("wadors:http://h/dicom-web/studies/1/series/2/instances/4/frames/1") is None
    assert metadata_manager.remove(key) is True
    assert metadata_manager.get(key) is None and metadata_manager.remove(key) is False


def test_add_accepts_a_metadata_answer_and_purge_forgets() -> None:
    metadata_manager.add("wadors:http://h/s/studies/1/series/2/instances/3", [instance_json("3")])
    assert metadata_manager.instance_count() == 1
    metadata_manager.purge()
    assert metadata_manager.instance_count() == 0


def test_add_rejects_what_is_not_an_instance() -> None:
    with pytest.raises(TypeError, match="one instance's DICOM JSON"):
        metadata_manager.add("wadors:http://h/r/studies/1/series/2/instances/3", cast(Any, [{}, {}]))
    with pytest.raises(InvalidImageError, match="names a series"):
        metadata_manager.add("wadors:http://h/r/studies/1/series/2", {})
    with pytest.raises(InvalidImageError, match="not a WADO-RS URL"):
        metadata_manager.add("wadors:http://h/nothing", {})
    assert metadata_manager.get("not an id") is None and metadata_manager.remove("nope") is False


def test_fetch_registers_and_is_made_once_for_concurrent_callers(fake_server: FakeServer) -> None:
    fake_server.route(f"{SERIES}/instances/9/metadata", json_reply([instance_json("9")], delay=0.2))
    image_id = f"wadors:{fake_server.url}{SERIES}/instances/9/frames/1"
    results: list[Any] = []

    def run(n: int) -> None:
        with use_load_context(LoadContext(f"{image_id}#{n}")):
            results.append(metadata_manager.fetch(image_id, {}))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 6 and all(r is results[0] for r in results)
    assert fake_server.paths() == [f"{SERIES}/instances/9/metadata"]
    assert metadata_manager.get(image_id) == instance_json("9")
    assert fake_server.requests[0][1]["accept"].startswith("application/dicom+json")


def test_fetch_uses_what_was_added(fake_server: FakeServer) -> None:
    image_id = f"wadors:{fake_server.url}{SERIES}/instances/9/frames/1"
    metadata_manager.add(image_id, instance_json("9"))
    assert metadata_manager.fetch(image_id).attrs == instance_json("9")
    assert fake_server.paths() == []


def test_fetch_series_fills_every_instance_once(fake_server: FakeServer) -> None:
    fake_server.route(f"{SERIES}/metadata", json_reply([instance_json("a", 2), instance_json("b", 1)]))
    mine = instance_json("a", 99)
    metadata_manager.add(f"{fake_server.url}{SERIES}/instances/a", mine)
    base = f"wadors:{fake_server.url}{SERIES}"
    instances = metadata_manager.fetch_series(f"{base}?k=v", {"headers": {"X": "1"}})
    assert [i["00080018"]["Value"][0] for i in instances] == ["a", "b"]
    assert metadata_manager.get(f"{base}/instances/a/frames/1") is mine
    assert metadata_manager.get(f"{base}/instances/b/frames/1") == instance_json("b", 1)
    assert fake_server.paths() == [f"{SERIES}/metadata?k=v"]
    assert fake_server.requests[0][1]["x"] == "1"


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(("reply", "error", "message"), [
    (Reply(404, {"Content-Type": "text/plain"}, b"gone"), TransportError, "HTTP 404"),
    (Reply(200, JSON, b"{not json"), InvalidImageError, "did not answer JSON"),
    (Reply(200, JSON, b"[1, 2]"), InvalidImageError, "list of DICOM JSON"),
    (Reply(200, JSON, b"[{}, {}]"), InvalidImageError, "2 datasets"),
])
def test_fetch_errors_are_typed_and_leave_nothing(fake_server: FakeServer, reply: Reply,
                                                  error: type[Exception], message: str) -> None:
    fake_server.route(f"{SERIES}/instances/9/metadata", reply)
    image_id = f"wadors:{fake_server.url}{SERIES}/instances/9/frames/1"
    with use_load_context(LoadContext(image_id)), pytest.raises(error, match=message) as info:
        metadata_manager.fetch(image_id)
    assert getattr(info.value, "image_id", None) == image_id
    if isinstance(info.value, TransportError):
        assert info.value.status == 404
    url = f"{fake_server.url}{SERIES}/instances/9/metadata"
    assert metadata_manager.get(image_id) is None and not metadata_store._fetches.in_flight((url, ()))


def test_series_instance_without_uid_is_invalid(fake_server: FakeServer) -> None:
    fake_server.route(f"{SERIES}/metadata", json_reply([{"00200013": {"vr": "IS", "Value": [1]}}]))
    with pytest.raises(InvalidImageError, match="no SOP Instance UID"):
        metadata_manager.fetch_series(f"wadors:{fake_server.url}{SERIES}")


def test_a_waiter_outlives_an_owner_that_timed_out(fake_server: FakeServer) -> None:
    fake_server.route(f"{SERIES}/instances/9/metadata", json_reply([instance_json("9")], delay=0.4))
    image_id = f"wadors:{fake_server.url}{SERIES}/instances/9/frames/1"
    outcome: dict[str, Any] = {}

    def run(name: str, timeout: float | None) -> None:
        try:
            with use_load_context(LoadContext(name, timeout=timeout)):
                outcome[name] = metadata_manager.fetch(image_id)
        except Exception as exc:
            outcome[name] = exc

    owner = threading.Thread(target=run, args=("owner", 0.15))
    owner.start()
    time.sleep(0.05)
    waiter = threading.Thread(target=run, args=("waiter", None))
    waiter.start()
    owner.join(10)
    waiter.join(10)
    assert isinstance(outcome["owner"], LoadTimeoutError)
    assert outcome["waiter"].attrs == instance_json("9")
    assert len(fake_server.paths()) == 2  # the waiter asked again after the owner gave up


def test_ref_urls_keep_the_query() -> None:
    ref = parse_wadors_id("wadors:http://h/r/studies/1/series/2/instances/3/frames/4?t=1")
    assert ref.frame == 4 and ref.instance_url == "http://h/r/studies/1/series/2/instances/3"
    assert ref.frames_url([1, 2]) == "http://h/r/studies/1/series/2/instances/3/frames/1,2?t=1"
    assert ref.metadata_url() == "http://h/r/studies/1/series/2/instances/3/metadata?t=1"
    assert ref.frame_id("9", 2) == "wadors:http://h/r/studies/1/series/2/instances/9/frames/2?t=1"


@pytest.mark.parametrize(("image_id", "message"), [
    ("wadors:http://h/r/studies/1/series/2/instances/3/frames/0", "1-based"),
    ("wadors:http://h/r/studies/1/series/2/instances/3/frames/1,2", "one frame number"),
    ("wadors:http://h/r/studies/1/series/2/instances/3/frames/x", "one frame number"),
    ("wadors:http://h/r/studies/1/series/2/instances/3", "names no frame"),
    ("wadors:http://h/r/instances/3/frames/1", "not a WADO-RS URL"),
])
def test_bad_frame_ids(image_id: str, message: str) -> None:
    with pytest.raises(InvalidImageError, match=message):
        parse_wadors_id(image_id)
