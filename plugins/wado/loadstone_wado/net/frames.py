"""Fetch WADO-RS frames, merging concurrent requests for one instance into one.

Why batch: a DICOMweb server answers ``…/frames/1,2,3`` with one response,
so loading the frames of a multi-frame instance one request each costs the
server a lookup (and often a parse of the whole instance) per frame, and the
client a round trip per frame.  loadstone's request pool starts loads a few
at a time and a loader cannot see what is still queued, so batching has to
happen among the loads that are *running*.

The design is self-clocking, with no timer and no added latency:

* loads of frames of one instance (and one set of credentials) register
  their frame with that instance's state; a frame already pending or in
  flight is shared, not asked for twice;
* while fewer than ``max_requests_per_instance`` requests are in flight for
  the instance, a waiting load sends *every* pending frame of it (up to
  ``max_frames_per_request``) in one request; otherwise it waits, and the
  frames that pile up meanwhile leave together when a request completes.
  An isolated load therefore goes out at once, and under load the batch
  size grows by itself with the number of concurrent loads;
* an ``INTERACTION`` load (what ``load_image`` starts by default) never
  waits for the cap: a user is looking at it;
* the request of a batch runs in a context of its own, cancelled only when
  every load waiting on it has been cancelled or timed out, so one load's
  cancel never fails its neighbours; each load still stops at its own
  cancel or deadline at once;
* when a server refuses a batch with 400 (e.g. one frame is out of range)
  the loads retry alone, so one bad frame fails only its own load;
* the pool runs only a few loads at once (8 for ``PREFETCH``), which caps a
  batch at that size; so a non-urgent batch of a multi-frame instance also
  *reads ahead* the next ``read_ahead`` frames, kept (bounded in time and
  bytes, swept by loadstone's timer) for the loads that ask for them next.

Defaults come from ``benchmarks/bench_wado_rs.py`` (100 frames of a 50 MiB
instance from Orthanc, where every request re-parses the whole instance):
one request per frame ~9-20 s, batched with 1-4 requests in flight 3-6 s,
batched with read-ahead 0.6-1 s (4 requests).  One request in flight per
instance is the default: on that server more in flight only contend.

Frames are requested in their stored transfer syntax
(``transfer-syntax=*``: no server-side transcoding, decoded here).  A server
that cannot send that (Orthanc answers 500 for big-endian and deflated
instances) is asked again for Explicit VR Little Endian, and the instance is
remembered so later frames ask for that at once.
"""

from __future__ import annotations

import collections
import concurrent.futures
import re
import threading
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadstone import LoadContext, current_load, http, use_load_context
from loadstone.errors import InvalidImageError, LoadCancelledError, LoadTimeoutError, TransportError
from loadstone.toolkit import LRUCache, Timer, call_later, rebrand

from ..dicom.syntaxes import EXPLICIT_LE
from .ids import WadorsRef
from .multipart import parse_media_type, parse_multipart_related

__all__ = [
    "ACCEPT_STORED",
    "ACCEPT_EXPLICIT_LITTLE_ENDIAN",
    "BatchSettings",
    "Frame",
    "FrameStats",
    "settings",
    "stats",
    "fetch_frame",
    "forget_fallbacks",
    "clear_read_ahead",
    "read_ahead_bytes",
]

EXPLICIT_VR_LITTLE_ENDIAN = EXPLICIT_LE
ACCEPT_STORED = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
ACCEPT_EXPLICIT_LITTLE_ENDIAN = (
    f'multipart/related; type="application/octet-stream"; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}'
)
#: Answers to ``transfer-syntax=*`` after which Explicit VR Little Endian is asked for instead.
FALLBACK_STATUSES = frozenset({406, 415, 500, 501})
_FALLBACK_MEMORY = 4096  # instances remembered as needing the fallback
_FRAME_IN_LOCATION = re.compile(r"/frames/(\d+)/?(?:\?.*)?$")


@dataclass(frozen=True)
class Frame:
    """One frame as received: a view of its bytes and its transfer syntax."""

    data: memoryview
    transfer_syntax_uid: str | None
    content_type: str


@dataclass
class BatchSettings:
    """How frame requests are merged (see the module docstring).

    ``enabled=False`` sends one request per load, as cornerstone does.
    ``read_ahead`` frames past the highest one asked for ride along with a
    non-urgent batch of a multi-frame instance and wait (at most
    ``read_ahead_seconds``, at most ``read_ahead_bytes`` in all) for the loads
    that will ask for them.
    """

    enabled: bool = True
    max_requests_per_instance: int = 1
    max_frames_per_request: int = 64
    read_ahead: int = 32
    read_ahead_seconds: float = 10.0
    read_ahead_bytes: int = 256 * 1024 * 1024


@dataclass
class FrameStats:
    """Counters for measuring batching: requests sent, frames they carried, read-ahead use."""

    requests: int = 0
    frames: int = 0
    fallbacks: int = 0
    read_ahead_used: int = 0
    read_ahead_wasted: int = 0

    def reset(self) -> None:
        """Start counting again."""
        self.requests = self.frames = self.fallbacks = 0
        self.read_ahead_used = self.read_ahead_wasted = 0


settings = BatchSettings()
stats = FrameStats()

_cond = threading.Condition(threading.RLock())
_states: dict[tuple[str, Hashable], _InstanceState] = {}
#: Instances remembered as needing the Explicit VR Little Endian fallback, most recent kept.
_needs_fallback: LRUCache[str, bool] = LRUCache(_FALLBACK_MEMORY)
# Read-ahead frames waiting for their loads, oldest first: (state key, frame) -> (state, bytes, expiry).
_ready_order: collections.OrderedDict[tuple[tuple[str, Hashable], int], tuple[_InstanceState, int, float]] = (
    collections.OrderedDict())
_ready_bytes = 0
_sweeper: Timer | None = None


class _RetryAloneError(Exception):
    """Internal: the batch was refused as a whole; each load asks for its own frame."""


class _Batch:
    __slots__ = ("live", "context")

    def __init__(self, live: int, context: LoadContext) -> None:
        self.live = live  # slots of the batch that still have a waiting load
        self.context = context


class _Slot:
    __slots__ = ("frame", "future", "waiters", "batch", "deadline", "unbounded")

    def __init__(self, frame: int) -> None:
        self.frame = frame
        self.future: concurrent.futures.Future[Frame] = concurrent.futures.Future()
        self.waiters = 0
        self.batch: _Batch | None = None
        self.deadline = 0.0  # the latest deadline of the loads waiting for it
        self.unbounded = False  # some waiting load has no deadline

    def join(self, ctx: LoadContext | None) -> None:
        self.waiters += 1
        if ctx is None or ctx.deadline is None:
            self.unbounded = True
        else:
            self.deadline = max(self.deadline, ctx.deadline)


class _InstanceState:
    __slots__ = ("slots", "pending", "in_flight", "ready", "horizon")

    def __init__(self) -> None:
        self.slots: dict[int, _Slot] = {}
        self.pending: list[int] = []
        self.in_flight = 0
        self.ready: dict[int, Frame] = {}  # read ahead, not yet asked for
        # The highest frame any batch carried: read-ahead starts above it, so a
        # frame already fetched (and perhaps already handed to its load) is
        # never read ahead again when loads arrive out of order.
        self.horizon = 0


def forget_fallbacks() -> None:
    """Forget which instances needed the Explicit VR Little Endian fallback."""
    _needs_fallback.clear()


def clear_read_ahead() -> None:
    """Drop every frame read ahead and not yet asked for."""
    with _cond:
        while _ready_order:
            _drop_ready(next(iter(_ready_order)))


def read_ahead_bytes() -> int:
    """Bytes of frames read ahead and waiting for their loads."""
    return _ready_bytes


def _drop_ready(entry: tuple[tuple[str, Hashable], int], wasted: bool = True) -> Frame | None:
    """Forget one read-ahead frame (caller holds the lock); returns it."""
    global _ready_bytes
    state, size, _ = _ready_order.pop(entry)
    _ready_bytes -= size
    frame = state.ready.pop(entry[1], None)
    if wasted:
        stats.read_ahead_wasted += 1
    _drop_if_idle(entry[0], state)
    return frame


def _expire_ready(now: float) -> None:
    """Drop read-ahead frames past their time, and the oldest while over the byte budget."""
    while _ready_order:
        entry, (_, _, expires) = next(iter(_ready_order.items()))
        if expires > now and _ready_bytes <= settings.read_ahead_bytes:
            return
        _drop_ready(entry)


def _sweep() -> None:
    """Timer callback: expire read-ahead frames nobody asked for in time."""
    global _sweeper
    with _cond:
        _sweeper = None
        _expire_ready(time.monotonic())
        _schedule_sweep()


def _schedule_sweep() -> None:
    """Make sure a sweep runs when the oldest read-ahead frame expires (caller holds the lock)."""
    global _sweeper
    if not _ready_order:
        return
    _, (_, _, expires) = next(iter(_ready_order.items()))
    if _sweeper is not None:
        if _sweeper.when <= expires + 0.01:
            return
        _sweeper.cancel()  # due too late (the setting was shortened): sooner instead
    _sweeper = call_later(max(0.0, expires - time.monotonic()) + 0.01, _sweep)


def _keep_ready(key: tuple[str, Hashable], state: _InstanceState, number: int, frame: Frame) -> None:
    global _ready_bytes
    entry = (key, number)
    if entry in _ready_order:
        _drop_ready(entry)
    size = frame.data.nbytes
    state.ready[number] = frame
    _ready_order[entry] = (state, size, time.monotonic() + settings.read_ahead_seconds)
    _ready_bytes += size
    _expire_ready(time.monotonic())  # keeps within the byte budget
    _schedule_sweep()


def fetch_frame(ref: WadorsRef, options: Mapping[str, Any] | None, *, urgent: bool,
                frame_count: int = 1) -> Frame:
    """The frame ``ref`` names, batched with concurrent loads of the same instance.

    ``frame_count`` is the instance's number of frames (read-ahead stays
    within it).  Runs inside a load (its context gives cancel and deadline).
    Raises typed loadstone errors under the current load's image id.
    """
    assert ref.frame is not None
    if not settings.enabled:
        return _fetch_alone(ref, options)
    ctx = current_load()
    key = (ref.instance_url + ref.query, http.share_key(options))
    with _cond:
        _expire_ready(time.monotonic())
        state = _states.get(key)
        if state is None:
            state = _states[key] = _InstanceState()
        if ref.frame in state.ready:  # read ahead by an earlier batch
            stats.read_ahead_used += 1
            ready = _drop_ready((key, ref.frame), wasted=False)
            assert ready is not None
            return ready
        slot = state.slots.get(ref.frame)
        if slot is None:
            slot = state.slots[ref.frame] = _Slot(ref.frame)
            state.pending.append(ref.frame)
        elif slot.batch is not None and slot.waiters == 0:
            slot.batch.live += 1  # a read-ahead frame in flight now has a load waiting for it
        slot.join(ctx)
    departed = [False]

    def depart(cancelled: bool) -> None:
        with _cond:
            if departed[0]:
                return
            departed[0] = True
            slot.waiters -= 1
            if cancelled and slot.waiters == 0:
                if slot.batch is None:  # never sent: drop it
                    if ref.frame in state.pending:
                        state.pending.remove(ref.frame)
                    if state.slots.get(slot.frame) is slot:
                        del state.slots[slot.frame]
                    slot.future.cancel()
                    _drop_if_idle(key, state)
                else:
                    slot.batch.live -= 1
                    if slot.batch.live == 0:  # nobody wants this response any more
                        slot.batch.context.cancel()
            _cond.notify_all()

    unregister = ctx.on_cancel(lambda: depart(True)) if ctx is not None else None
    try:
        while True:
            batch: list[_Slot] | None = None
            with _cond:
                if slot.future.done():
                    break
                if slot.batch is None and not departed[0] and (
                    urgent or state.in_flight < max(1, settings.max_requests_per_instance)
                ):
                    batch = _take_batch(state, slot, ctx, ref, 0 if urgent else frame_count)
                else:
                    _cond.wait(None if ctx is None else ctx.remaining())
            if batch is not None:
                _send(key, state, batch, ref, options)
            elif ctx is not None:
                ctx.check()
        if ctx is not None:
            ctx.check()
    finally:
        if unregister is not None:
            unregister()
        depart(False)
    error = slot.future.exception()
    if error is None:
        return slot.future.result()
    if isinstance(error, _RetryAloneError):
        return _fetch_alone(ref, options)
    if isinstance(error, (LoadCancelledError, LoadTimeoutError)):
        return fetch_frame(ref, options, urgent=urgent, frame_count=frame_count)  # given up by others
    fresh = rebrand(error, ctx.image_id if ctx is not None else None)
    if fresh is error:
        raise error
    raise fresh from error


def _take_batch(state: _InstanceState, own: _Slot, ctx: LoadContext | None, ref: WadorsRef,
                frame_count: int) -> list[_Slot]:
    """Move pending frames (``own`` included) into one batch; called under the lock.

    With ``frame_count`` (non-urgent loads of a multi-frame instance), frames
    past the highest one wanted are added for read-ahead.
    """
    limit = max(1, settings.max_frames_per_request)
    frames = [f for f in state.pending if state.slots[f].waiters > 0]
    if len(frames) > limit:
        frames = [own.frame, *[f for f in frames if f != own.frame][: limit - 1]]
    taken = set(frames)
    state.pending = [f for f in state.pending if f not in taken]
    wanted = len(frames)
    if frame_count > 1 and settings.read_ahead > 0:
        number = max(max(frames), state.horizon) + 1
        while (number <= frame_count and len(frames) < min(limit, wanted + settings.read_ahead)):
            if number not in state.slots and number not in state.ready:
                state.slots[number] = _Slot(number)  # nobody waits for it yet
                frames.append(number)
            number += 1
    state.horizon = max(state.horizon, *frames)
    state.in_flight += 1
    slots = [state.slots[f] for f in sorted(frames)]
    # The request may take as long as the most patient load waiting for it.
    waited = [s for s in slots if s.waiters > 0]
    timeout = None if any(s.unbounded for s in waited) else max(s.deadline for s in waited) - time.monotonic()
    context = LoadContext(ctx.image_id if ctx is not None else ref.instance_url,
                          timeout=None if timeout is None else max(0.0, timeout))
    batch = _Batch(len(waited), context)
    for slot in slots:
        slot.batch = batch
    return slots


def _send(key: tuple[str, Hashable], state: _InstanceState, slots: list[_Slot], ref: WadorsRef,
          options: Mapping[str, Any] | None) -> None:
    """Request ``slots``' frames in one request and settle their futures; never raises."""
    batch = slots[0].batch
    assert batch is not None
    frames = [slot.frame for slot in slots]
    results: dict[int, Frame] = {}
    error: BaseException | None = None
    try:
        with use_load_context(batch.context):
            results = _request(ref, frames, options)
    except TransportError as exc:
        error = _RetryAloneError() if exc.status == 400 and len(frames) > 1 else exc
    except BaseException as exc:  # settled into the futures, raised by each waiting load
        error = exc
    with _cond:
        state.in_flight -= 1
        for slot in slots:
            if not slot.future.done():
                if error is not None:
                    slot.future.set_exception(error)
                else:
                    slot.future.set_result(results[slot.frame])
                    if slot.waiters == 0:  # read ahead: keep it for the load that will ask
                        _keep_ready(key, state, slot.frame, results[slot.frame])
            if state.slots.get(slot.frame) is slot:
                del state.slots[slot.frame]
        _drop_if_idle(key, state)
        _cond.notify_all()
    # The error's traceback holds this frame: drop what would make a cycle back to it.
    del error, slots, slot


def _drop_if_idle(key: tuple[str, Hashable], state: _InstanceState) -> None:
    if (not state.slots and not state.pending and not state.ready and state.in_flight == 0
            and _states.get(key) is state):
        del _states[key]


def _fetch_alone(ref: WadorsRef, options: Mapping[str, Any] | None) -> Frame:
    assert ref.frame is not None
    return _request(ref, [ref.frame], options)[ref.frame]


def _request(ref: WadorsRef, frames: Sequence[int], options: Mapping[str, Any] | None) -> dict[int, Frame]:
    """GET the frames (stored syntax, or the fallback) and split the answer by frame number."""
    url = ref.frames_url(frames)
    instance = ref.instance_url
    fallback = _needs_fallback.get(instance, False)
    with _cond:
        stats.requests += 1
        stats.frames += len(frames)
    if not fallback:
        try:
            response = http.fetch(url, options, accept=ACCEPT_STORED)
        except TransportError as first:
            if first.status not in FALLBACK_STATUSES:
                raise
            with _cond:
                stats.fallbacks += 1
            try:
                response = http.fetch(url, options, accept=ACCEPT_EXPLICIT_LITTLE_ENDIAN)
            except TransportError as second:
                raise TransportError(
                    f"{first.message}; asked again for Explicit VR Little Endian: {second.message}",
                    image_id=first.image_id, status=first.status, url=first.url,
                ) from second
            _needs_fallback.put(instance, True)
    else:
        response = http.fetch(url, options, accept=ACCEPT_EXPLICIT_LITTLE_ENDIAN)
    return _split(response.content, response.headers.get("Content-Type", ""), frames, url,
                  response.status)


def _split(body: bytes | bytearray, content_type: str, frames: Sequence[int], url: str,
           status: int) -> dict[int, Frame]:
    ctx = current_load()
    image_id = ctx.image_id if ctx is not None else None
    media, params = parse_media_type(content_type)
    if not media.startswith("multipart/"):
        if len(frames) == 1 and media and media not in ("text/html", "text/plain", "application/json"):
            # A bare single-part answer (some servers send one frame this way).
            return {frames[0]: Frame(memoryview(body).toreadonly(), params.get("transfer-syntax"), media)}
        raise InvalidImageError(
            f"{url} answered Content-Type {content_type!r}, not multipart/related frames",
            image_id=image_id,
        )
    parts = parse_multipart_related(body, content_type, image_id=image_id, url=url, status=status)
    if len(parts) != len(frames):
        raise InvalidImageError(
            f"{url} answered {len(parts)} part(s) for {len(frames)} frame(s)", image_id=image_id
        )
    order = list(frames)
    located = []
    for part in parts:
        match = _FRAME_IN_LOCATION.search(part.content_location or "")
        located.append(int(match.group(1)) if match else None)
    if sorted(f for f in located if f is not None) == sorted(frames):
        order = [f for f in located if f is not None]
    return {
        frame: Frame(part.data, part.transfer_syntax_uid, part.content_type)
        for frame, part in zip(order, parts, strict=True)
    }
