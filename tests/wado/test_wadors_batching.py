"""Frame batching (``loadstone_wado.net.frames``) against a scripted server: merging, isolation, fallback."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from loadstone import (
    InvalidImageError,
    LoadCancelledError,
    LoadContext,
    LoadTimeoutError,
    TransportError,
    use_load_context,
)
from loadstone_wado.net import frames as net_frames
from loadstone_wado.wadors import parse_wadors_id

try:
    from orthanc import FakeServer, Reply, fake_server, multipart_body, no_leaked_threads
except ImportError:  # tests/wado became a package
    from .orthanc import FakeServer, Reply, fake_server, multipart_body, no_leaked_threads  # type: ignore[no-redef]

__all__ = ["fake_server", "no_leaked_threads"]

INSTANCE = "/dicom-web/studies/1.2/series/3.4/instances/5.6"
FRAMES_RE = re.compile(r"/frames/([\d,]+)")
EXPLICIT = "1.2.840.10008.1.2.1"


@pytest.fixture(autouse=True)
def _reset_batching() -> Iterator[None]:
    defaults = dataclasses.asdict(net_frames.settings)
    net_frames.stats.reset()  # counters start at zero whatever loaded wadors: frames before this test
    yield
    for name, value in defaults.items():
        setattr(net_frames.settings, name, value)
    net_frames.clear_read_ahead()
    net_frames.forget_fallbacks()
    net_frames.stats.reset()


def frame_bytes(n: int) -> bytes:
    return f"<frame {n}>".encode() * 3


class FrameServer:
    """Serves ``frames/a,b,c`` of one instance with ``count`` frames; records concurrency."""

    def __init__(self, server: FakeServer, count: int = 40, delay: float = 0.0,
                 refuse_stored: bool = False, reverse: bool = False) -> None:
        self.server = server
        self.count = count
        self.delay = delay
        self.refuse_stored = refuse_stored
        self.reverse = reverse
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        server.route(INSTANCE + "/frames/", self.respond)

    def respond(self, path: str, headers: dict[str, str]) -> Reply:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.delay)
            match = FRAMES_RE.search(path)
            assert match is not None
            frames = [int(f) for f in match.group(1).split(",")]
            if any(f < 1 or f > self.count for f in frames):
                return Reply(400, {"Content-Type": "text/plain"}, b"frame out of range")
            accept = headers.get("accept", "")
            if self.refuse_stored and "transfer-syntax=*" in accept:
                return Reply(500, {"Content-Type": "text/plain"}, b"cannot send stored syntax")
            syntax = EXPLICIT if "transfer-syntax=1.2.840.10008.1.2.1" in accept else "1.2.840.10008.1.2"
            if self.reverse:  # with Content-Location, the order of parts does not matter
                out = bytearray()
                for f in reversed(frames):
                    data = frame_bytes(f)
                    out += (f"--bnd\r\nContent-Type: application/octet-stream; transfer-syntax={syntax}\r\n"
                            f"Content-Location: {INSTANCE}/frames/{f}\r\n"
                            f"Content-Length: {len(data)}\r\n\r\n").encode() + data + b"\r\n"
                body = bytes(out + b"--bnd--\r\n")
            else:
                body = multipart_body(
                    [(frame_bytes(f), f"application/octet-stream; transfer-syntax={syntax}") for f in frames],
                    "bnd")
            content_type = 'multipart/related; type="application/octet-stream"; boundary=bnd'
            return Reply(200, {"Content-Type": content_type}, body)
        finally:
            with self.lock:
                self.active -= 1


def ref_of(server: FakeServer, frame: int, query: str = "") -> Any:
    return parse_wadors_id(f"wadors:{server.url}{INSTANCE}/frames/{frame}{query}")


def load_in_thread(
    server: FakeServer, frame: int, results: dict[int, Any], *, urgent: bool = False,
    options: dict[str, Any] | None = None, context: LoadContext | None = None, frame_count: int = 1,
) -> threading.Thread:
    def run() -> None:
        ctx = context or LoadContext(f"wadors:test/{frame}")
        try:
            with use_load_context(ctx):
                results[frame] = net_frames.fetch_frame(ref_of(server, frame), options or {}, urgent=urgent,
                                                         frame_count=frame_count)
        except BaseException as exc:
            results[frame] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def run_all(server: FakeServer, frames: list[int], **kwargs: Any) -> dict[int, Any]:
    results: dict[int, Any] = {}
    threads = [load_in_thread(server, f, results, **kwargs) for f in frames]
    for thread in threads:
        thread.join(20)
    assert not any(t.is_alive() for t in threads)
    return results


def assert_frames(results: dict[int, Any], frames: list[int]) -> None:
    for f in frames:
        got = results[f]
        assert isinstance(got, net_frames.Frame), f"frame {f}: {got!r}"
        assert bytes(got.data) == frame_bytes(f)


def test_concurrent_prefetch_loads_share_requests(fake_server: FakeServer) -> None:
    frames = FrameServer(fake_server, delay=0.05)
    wanted = list(range(1, 25))
    results = run_all(fake_server, wanted)
    assert_frames(results, wanted)
    requests = fake_server.paths(INSTANCE)
    assert len(requests) <= 8, requests
    assert frames.max_active <= 1
    assert net_frames.stats.frames == 24 and net_frames.stats.requests == len(requests)


def test_isolated_load_goes_out_alone_at_once(fake_server: FakeServer) -> None:
    FrameServer(fake_server)
    results = run_all(fake_server, [7])
    assert_frames(results, [7])
    assert fake_server.paths(INSTANCE) == [f"{INSTANCE}/frames/7"]


def test_same_frame_is_requested_once(fake_server: FakeServer) -> None:
    FrameServer(fake_server, delay=0.1)
    results: dict[int, Any] = {}
    box: list[dict[int, Any]] = [{} for _ in range(5)]
    threads = [load_in_thread(fake_server, 3, box[i]) for i in range(5)]
    for thread in threads:
        thread.join(20)
    for item in box:
        results.update(item)
        assert bytes(item[3].data) == frame_bytes(3)
    assert len(fake_server.paths(INSTANCE)) <= 2  # one batch, or two if the first went before the rest joined


def test_urgent_loads_do_not_wait_for_the_cap(fake_server: FakeServer) -> None:
    frames = FrameServer(fake_server, delay=0.2)
    results: dict[int, Any] = {}
    threads = []
    for f in (1, 2, 3):
        threads.append(load_in_thread(fake_server, f, results, urgent=True))
        time.sleep(0.03)  # each arrives while the previous is in flight
    for thread in threads:
        thread.join(20)
    assert_frames(results, [1, 2, 3])
    assert frames.max_active == 3


def test_disabled_batching_sends_one_request_per_frame(fake_server: FakeServer) -> None:
    FrameServer(fake_server, delay=0.02)
    net_frames.settings.enabled = False
    results = run_all(fake_server, list(range(1, 9)))
    assert_frames(results, list(range(1, 9)))
    assert sorted(fake_server.paths(INSTANCE)) == sorted(f"{INSTANCE}/frames/{f}" for f in range(1, 9))


def test_frame_cap_splits_batches(fake_server: FakeServer) -> None:
    FrameServer(fake_server, delay=0.05)
    net_frames.settings.max_frames_per_request = 3
    results = run_all(fake_server, list(range(1, 13)))
    assert_frames(results, list(range(1, 13)))
    for path in fake_server.paths(INSTANCE):
        assert len(path.rsplit("/", 1)[1].split(",")) <= 3


def test_one_bad_frame_fails_alone(fake_server: FakeServer) -> None:
    FrameServer(fake_server, count=10, delay=0.05)
    results = run_all(fake_server, list(range(1, 13)))
    assert_frames(results, list(range(1, 11)))
    for f in (11, 12):
        error = results[f]
        assert isinstance(error, TransportError) and error.status == 400, error
        assert error.image_id == f"wadors:test/{f}"


def test_server_refusing_stored_syntax_gets_explicit_little_endian(fake_server: FakeServer) -> None:
    FrameServer(fake_server, refuse_stored=True)
    first = run_all(fake_server, [1])
    assert first[1].transfer_syntax_uid == EXPLICIT
    second = run_all(fake_server, [2])
    assert second[2].transfer_syntax_uid == EXPLICIT
    accepts = [h["accept"] for p, h in fake_server.requests if p.startswith(INSTANCE)]
    assert accepts[0].endswith("transfer-syntax=*")
    assert all(a.endswith(f"transfer-syntax={EXPLICIT}") for a in accepts[1:])
    assert len(accepts) == 3  # refused once, then remembered
    assert net_frames.stats.fallbacks == 1


def test_failure_of_both_syntaxes_reports_the_first_status(fake_server: FakeServer) -> None:
    fake_server.route(INSTANCE + "/frames/", Reply(500, {"Content-Type": "text/plain"}, b"broken"))
    results = run_all(fake_server, [1])
    error = results[1]
    assert isinstance(error, TransportError) and error.status == 500
    assert "Explicit VR Little Endian" in str(error)
    assert len(fake_server.paths(INSTANCE)) == 2


def test_parts_are_matched_by_content_location(fake_server: FakeServer) -> None:
    FrameServer(fake_server, delay=0.05, reverse=True)
    results = run_all(fake_server, list(range(1, 9)))
    assert_frames(results, list(range(1, 9)))


def test_wrong_number_of_parts_is_invalid(fake_server: FakeServer) -> None:
    body = multipart_body([(b"a", "application/octet-stream"), (b"b", "application/octet-stream")], "b1")
    reply = Reply(200, {"Content-Type": "multipart/related; boundary=b1"}, body)
    fake_server.route(INSTANCE + "/frames/", reply)
    error = run_all(fake_server, [1])[1]
    assert isinstance(error, InvalidImageError) and "2 part(s) for 1 frame(s)" in str(error)


def test_bare_single_frame_answer_is_accepted(fake_server: FakeServer) -> None:
    fake_server.route(INSTANCE + "/frames/", Reply(
        200, {"Content-Type": "application/octet-stream; transfer-syntax=1.2.840.10008.1.2"}, b"\x01\x02"))
    got = run_all(fake_server, [1])[1]
    assert bytes(got.data) == b"\x01\x02" and got.transfer_syntax_uid == "1.2.840.10008.1.2"


def test_html_answer_is_invalid(fake_server: FakeServer) -> None:
    fake_server.route(INSTANCE + "/frames/", Reply(200, {"Content-Type": "text/html"}, b"<html></html>"))
    assert isinstance(run_all(fake_server, [1])[1], InvalidImageError)


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert condition()


def test_cancelling_one_load_does_not_fail_its_batch(fake_server: FakeServer) -> None:
    FrameServer(fake_server, delay=0.3)
    contexts = {f: LoadContext(f"wadors:test/{f}") for f in range(1, 7)}
    results: dict[int, Any] = {}
    threads = [load_in_thread(fake_server, 1, results, context=contexts[1])]
    wait_until(lambda: len(fake_server.paths(INSTANCE)) == 1)
    threads += [load_in_thread(fake_server, f, results, context=contexts[f]) for f in range(2, 7)]
    time.sleep(0.1)
    contexts[1].cancel()  # the first request's owner
    contexts[4].cancel()  # one waiting in the pending batch
    started = time.monotonic()
    for thread in threads:
        thread.join(20)
    assert isinstance(results[1], LoadCancelledError) and isinstance(results[4], LoadCancelledError)
    assert_frames(results, [2, 3, 5, 6])
    assert time.monotonic() - started < 2.0
    assert not any("4" in p.rsplit("/", 1)[1].split(",") for p in fake_server.paths(INSTANCE)[1:])


def test_cancelling_every_waiter_aborts_the_request(fake_server: FakeServer) -> None:
    fake_server.route(INSTANCE + "/frames/", Reply(
        200, {"Content-Type": "multipart/related; boundary=x"}, b"--x\r\n" + b"\0" * 1000, stall_after=5))
    context = LoadContext("wadors:test/1")
    results: dict[int, Any] = {}
    thread = load_in_thread(fake_server, 1, results, context=context)
    wait_until(lambda: len(fake_server.paths(INSTANCE)) == 1)
    time.sleep(0.1)
    started = time.monotonic()
    context.cancel()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 1.0
    assert isinstance(results[1], LoadCancelledError)
    assert not net_frames._states, "instance state left behind"


def test_stalled_server_times_out_within_the_deadline(fake_server: FakeServer) -> None:
    fake_server.route(INSTANCE + "/frames/", Reply(
        200, {"Content-Type": "multipart/related; boundary=x"}, b"--x\r\n" + b"\0" * 1000, stall_after=5))
    context = LoadContext("wadors:test/1", timeout=0.4)
    results: dict[int, Any] = {}
    started = time.monotonic()
    thread = load_in_thread(fake_server, 1, results, context=context)
    thread.join(5)
    elapsed = time.monotonic() - started
    assert isinstance(results[1], LoadTimeoutError), results[1]
    assert elapsed < 1.5


def test_different_credentials_are_never_merged(fake_server: FakeServer) -> None:
    FrameServer(fake_server, delay=0.05)
    results_a: dict[int, Any] = {}
    results_b: dict[int, Any] = {}
    threads = [load_in_thread(fake_server, f, results_a, options={"headers": {"Authorization": "A"}})
               for f in range(1, 5)]
    threads += [load_in_thread(fake_server, f, results_b, options={"headers": {"Authorization": "B"}})
                for f in range(1, 5)]
    for thread in threads:
        thread.join(20)
    assert_frames(results_a, [1, 2, 3, 4])
    assert_frames(results_b, [1, 2, 3, 4])
    for path, headers in fake_server.requests:
        frames = path.rsplit("/", 1)[1].split(",")
        assert headers["authorization"] in ("A", "B") and len(frames) == len(set(frames))
    by_auth: dict[str, list[str]] = {"A": [], "B": []}
    for path, headers in fake_server.requests:
        by_auth[headers["authorization"]] += path.rsplit("/", 1)[1].split(",")
    assert sorted(by_auth["A"]) == sorted(by_auth["B"]) == ["1", "2", "3", "4"]


def test_query_string_follows_the_batch(fake_server: FakeServer) -> None:
    FrameServer(fake_server)
    results: dict[int, Any] = {}
    with use_load_context(LoadContext("wadors:q")):
        results[2] = net_frames.fetch_frame(ref_of(fake_server, 2, "?token=abc"), {}, urgent=True)
    assert bytes(results[2].data) == frame_bytes(2)
    assert fake_server.paths(INSTANCE) == [f"{INSTANCE}/frames/2?token=abc"]


# -- read-ahead -------------------------------------------------------------------------------------


def test_read_ahead_serves_the_next_frames_of_a_multiframe_instance(fake_server: FakeServer) -> None:
    FrameServer(fake_server, count=40, delay=0.05)
    wanted = list(range(1, 41))
    results: dict[int, Any] = {}
    for start in range(0, 40, 8):  # as the request pool does: a few loads at a time, in order
        threads = [load_in_thread(fake_server, f, results, frame_count=40) for f in wanted[start:start + 8]]
        for thread in threads:
            thread.join(20)
    assert_frames(results, wanted)
    requests = fake_server.paths(INSTANCE)
    assert len(requests) <= 4, requests
    assert net_frames.stats.read_ahead_used >= 20  # the rest joined read-ahead frames in flight
    assert net_frames.read_ahead_bytes() == 0 and not net_frames._states


def test_urgent_loads_do_not_read_ahead(fake_server: FakeServer) -> None:
    FrameServer(fake_server, count=40)
    assert_frames(run_all(fake_server, [1], urgent=True, frame_count=40), [1])
    assert fake_server.paths(INSTANCE) == [f"{INSTANCE}/frames/1"]
    assert net_frames.read_ahead_bytes() == 0


def test_read_ahead_stays_within_the_instance_and_the_cap(fake_server: FakeServer) -> None:
    FrameServer(fake_server, count=5)
    run_all(fake_server, [3], frame_count=5)
    assert fake_server.paths(INSTANCE) == [f"{INSTANCE}/frames/3,4,5"]
    net_frames.clear_read_ahead()
    net_frames.settings.max_frames_per_request = 2
    run_all(fake_server, [1], frame_count=5)
    assert fake_server.paths(INSTANCE)[-1] == f"{INSTANCE}/frames/1,2"


def test_unclaimed_read_ahead_expires(fake_server: FakeServer) -> None:
    FrameServer(fake_server, count=10)
    net_frames.settings.read_ahead_seconds = 0.2
    run_all(fake_server, [1], frame_count=10)
    assert net_frames.read_ahead_bytes() == sum(len(frame_bytes(f)) for f in range(2, 11))
    wait_until(lambda: net_frames.read_ahead_bytes() == 0, 3.0)
    assert net_frames.stats.read_ahead_wasted == 9 and not net_frames._states


def test_read_ahead_respects_its_byte_budget(fake_server: FakeServer) -> None:
    FrameServer(fake_server, count=10)
    net_frames.settings.read_ahead_bytes = 3 * len(frame_bytes(5))
    run_all(fake_server, [1], frame_count=10)
    assert net_frames.read_ahead_bytes() <= 3 * len(frame_bytes(9))
    assert_frames(run_all(fake_server, [10], frame_count=10), [10])  # the newest were kept
    assert len(fake_server.paths(INSTANCE)) == 1


def test_a_load_joins_a_read_ahead_frame_in_flight(fake_server: FakeServer) -> None:
    FrameServer(fake_server, count=10, delay=0.3)
    results: dict[int, Any] = {}
    first = load_in_thread(fake_server, 1, results, frame_count=10)
    wait_until(lambda: len(fake_server.paths(INSTANCE)) == 1)
    second = load_in_thread(fake_server, 5, results, frame_count=10)
    first.join(10)
    second.join(10)
    assert_frames(results, [1, 5])
    assert len(fake_server.paths(INSTANCE)) == 1
