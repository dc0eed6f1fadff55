"""Decode compressed frames in worker processes, as Cornerstone decodes in web workers.

The JPEG-LS, JPEG 2000, HTJ2K and JPEG lossless codecs hold the GIL while
they decode (two threads decode no faster than one, measured), so a series
of such frames would use one core however many loads run.  When two or more
compressed frames are decoding at once (``decode_pool="auto"``, the default)
the later ones go to a pool of processes; a lone frame decodes in its own
thread, with no inter-process latency.

* Workers are ``python -m loadstone_wado.pixels.worker`` processes (nothing
  of the calling program is re-imported), one per CPU core by default.
  They start in the background on first need; until one is ready, frames
  decode in-thread.
* The frame goes over a socket; the pixels come back through a
  :mod:`multiprocessing.shared_memory` block owned by this process, one per
  worker slot, reused from frame to frame (no pickled arrays).
* Each worker has two slots: its next frame already waits in its socket
  when it finishes one, so it never idles waiting for this process.
* A cancelled or timed-out load returns at once; nothing can interrupt a
  codec, so the worker finishes the frame and the answer is dropped (a
  worker silent for 60 s is stopped and replaced).  A worker that dies while
  decoding (a codec crash) fails that frame with :class:`InvalidImageError`
  and is replaced.
* JPEG 2000 frames use the pool's decoder order
  (:data:`loadstone_wado.pixels.order.POOL_PREFERENCE`): the least CPU per
  frame, since every core is busy.
* :func:`shutdown` (also run at interpreter exit) stops the workers and
  unlinks every block; if this process is killed, the workers see their
  socket close and exit, and multiprocessing's resource tracker unlinks the
  blocks.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from loadstone import InvalidImageError, LoadstoneError, current_load

from ..config import get_config
from ..dicom.description import PixelDescription
from .stored import DecodedFrame, FrameBytes

__all__ = [
    "POOL_SYNTAXES",
    "DecodePool",
    "get_pool",
    "decode",
    "start",
    "shutdown",
    "describe",
    "worker_count",
]

_log = logging.getLogger("loadstone_wado.decode_pool")

#: Syntaxes whose codecs hold the GIL for milliseconds per frame: worth a process hop.
#: RLE (~0.2 ms) and JPEG baseline (~0.5 ms) decode faster than the hop costs.
POOL_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",   # JPEG lossless
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",   # JPEG-LS
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",   # JPEG 2000
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",  # HTJ2K
})
_MIN_BLOCK = 1 << 20
_READY_TIMEOUT = 60.0
_POLL = 0.05
#: Frames queued per worker: one decoding, one waiting, so a worker never idles between frames.
_SLOTS = 2
#: How long an abandoned (cancelled) frame may take before its worker is stopped.
_ABANDON_TIMEOUT = 60.0


def worker_count() -> int:
    """Configured workers, else one per CPU this process may run on."""
    configured = get_config().decode_workers
    if configured:
        return configured
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _Worker:
    """One worker process: its socket, one shared-memory block per slot, and its answers.

    A worker has :data:`_SLOTS` slots, so the next frame is already queued in
    its socket when it finishes one: it never waits for this process to hand
    it work.  Answers come back in order; whichever waiting thread holds the
    reading turn reads them and hands each to its owner.
    """

    def __init__(self, number: int) -> None:
        self.number = number
        parent, child = socket.socketpair()
        env = dict(os.environ, LOADSTONE_WADO_DECODE_POOL="never")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "loadstone_wado.pixels.worker", str(child.fileno())],
                pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL, env=env, close_fds=True,
            )
        finally:
            child.close()
        self.conn = Connection(parent.detach())
        self.blocks: list[SharedMemory | None] = [None] * _SLOTS
        self.retired = False
        self.dead = False
        self._send_lock = threading.Lock()
        self._answers = threading.Condition()
        self._replies: dict[int, Any] = {}
        self._abandoned: dict[int, int] = {}  # task -> slot, answered to nobody
        self._reading = False
        self.on_slot_free: Callable[[_Worker, int], None] = lambda worker, slot: None

    def wait_ready(self, timeout: float) -> bool:
        if not self.conn.poll(timeout):
            return False
        message = self.conn.recv()
        return isinstance(message, tuple) and message[:1] == ("ready",)

    def ensure_block(self, slot: int, nbytes: int) -> SharedMemory:
        block = self.blocks[slot]
        if block is None or block.size < nbytes:
            self._release(slot)
            size = max(_MIN_BLOCK, 1 << (max(nbytes, 1) - 1).bit_length())
            block = self.blocks[slot] = SharedMemory(create=True, size=size)
        return block

    def _release(self, slot: int) -> None:
        block, self.blocks[slot] = self.blocks[slot], None
        if block is not None:
            block.close()
            with contextlib.suppress(FileNotFoundError):
                block.unlink()

    def send(self, message: tuple[Any, ...], frame: FrameBytes) -> None:
        with self._send_lock:
            self.conn.send(message)
            self.conn.send_bytes(frame)

    def receive(self, task: int) -> Any:
        """Wait for ``task``'s answer, reading the socket in turn with the other waiters."""
        context = current_load()
        while True:
            with self._answers:
                if task in self._replies:
                    return self._replies.pop(task)
                if self.dead:
                    raise EOFError("the worker exited")
                reader = not self._reading
                if reader:
                    self._reading = True
                else:
                    self._answers.wait(_POLL)
            if reader:
                self._read_once()
            if context is not None:
                context.check()

    def _read_once(self) -> None:
        try:
            if self.conn.poll(_POLL):
                reply = self.conn.recv()
                with self._answers:
                    slot = self._abandoned.pop(reply[0], None)
                    if slot is None:
                        self._replies[reply[0]] = reply
                if slot is not None:
                    self.on_slot_free(self, slot)
            elif self.process.poll() is not None:
                self.dead = True
        except (EOFError, OSError):
            self.dead = True
        finally:
            with self._answers:
                self._reading = False
                self._answers.notify_all()

    def abandon(self, task: int, slot: int) -> None:
        """Give up waiting for ``task``: its slot frees itself when the answer comes (drained)."""
        with self._answers:
            if task in self._replies:
                self._replies.pop(task)
                free = True
            else:
                self._abandoned[task] = slot
                free = False
        if free:
            self.on_slot_free(self, slot)
        else:
            threading.Thread(target=self._drain, name="loadstone-decode-drain", daemon=True).start()

    def _drain(self) -> None:
        """Read until no answer is owed to nobody; a worker silent for too long is stopped."""
        deadline = time.monotonic() + _ABANDON_TIMEOUT
        while time.monotonic() < deadline and not self.dead and not self.retired:
            with self._answers:
                if not self._abandoned:
                    return
                reader = not self._reading
                if reader:
                    self._reading = True
                else:
                    self._answers.wait(_POLL)
            if reader:
                self._read_once()
        if self._abandoned and not self.retired:
            _log.warning("decode worker %d did not finish an abandoned frame in %.0f s; stopping it",
                         self.number, _ABANDON_TIMEOUT)
            self.dead = True
            self.on_slot_free(self, -1)

    def stop(self, graceful: bool = True, timeout: float = 2.0) -> None:
        if graceful and self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError), self._send_lock:
                self.conn.send(None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        if self.process.poll() is None:
            self.process.kill()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                _log.warning("decode worker %d (pid %d) did not exit", self.number, self.process.pid)
        with contextlib.suppress(OSError):
            self.conn.close()
        for slot in range(_SLOTS):
            self._release(slot)


class DecodePool:
    """Decode worker processes, handed out one slot (frame) at a time, :data:`_SLOTS` per worker."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a decode pool needs at least one worker")
        self.size = workers
        self._lock = threading.Lock()
        self._slots: queue.Queue[tuple[_Worker, int]] = queue.Queue()
        self._workers: set[_Worker] = set()
        self._ready = 0
        self._starting = 0
        self._closed = False
        self._numbers = itertools.count(1)
        self._tasks = itertools.count(1)

    # -- life cycle --------------------------------------------------------------
    @property
    def ready_workers(self) -> int:
        """Workers started and answering."""
        return self._ready

    def start(self, wait: bool = False, timeout: float = _READY_TIMEOUT) -> None:
        """Start missing workers in the background (``wait``: until all are ready)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the decode pool was shut down")
            missing = self.size - self._ready - self._starting
            self._starting += max(0, missing)
        for _ in range(max(0, missing)):
            thread = threading.Thread(target=self._start_one, name="loadstone-decode-start", daemon=True)
            thread.start()
        if wait:
            deadline = time.monotonic() + timeout
            while self._ready < self.size and time.monotonic() < deadline:
                time.sleep(0.01)

    def _start_one(self) -> None:
        worker = None
        try:
            worker = _Worker(next(self._numbers))
            ok = worker.wait_ready(_READY_TIMEOUT)
        except Exception:
            _log.warning("a decode worker failed to start", exc_info=True)
            ok = False
        with self._lock:
            self._starting -= 1
            if ok and worker is not None and not self._closed:
                worker.on_slot_free = self._slot_free
                self._workers.add(worker)
                self._ready += 1
                for slot in range(_SLOTS):
                    self._slots.put((worker, slot))
                return
        if worker is not None:
            worker.stop(graceful=False)

    def _slot_free(self, worker: _Worker, slot: int) -> None:
        if slot < 0 or worker.dead:
            self._retire(worker, replace_it=True)
        elif not worker.retired:
            self._slots.put((worker, slot))

    def _retire(self, worker: _Worker, replace_it: bool) -> None:
        if worker.retired:
            return
        worker.retired = True
        with self._lock:
            if worker in self._workers:
                self._workers.discard(worker)
                self._ready -= 1
        worker.stop(graceful=False)
        if replace_it and not self._closed:
            with contextlib.suppress(RuntimeError):  # shut down meanwhile
                self.start()

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop every worker and unlink every shared-memory block."""
        with self._lock:
            self._closed = True
            workers = list(self._workers)
            self._workers.clear()
            self._ready = 0
        for worker in workers:
            worker.retired = True
            worker.stop(graceful=True, timeout=timeout)

    # -- work --------------------------------------------------------------
    def _acquire(self) -> tuple[_Worker, int] | None:
        """A free slot of a live worker; None (decode in-thread) while no worker has started yet."""
        if self._ready == 0:
            if not self._closed:
                self.start()
            return None
        context = current_load()
        while True:
            if context is not None:
                context.check()
            try:
                worker, slot = self._slots.get(timeout=_POLL)
            except queue.Empty:
                if self._ready == 0:
                    return None
                continue
            if worker.retired:
                continue  # a slot of a stopped worker: dropped
            if worker.dead or worker.process.poll() is not None:
                self._retire(worker, replace_it=True)  # died while idle: not this frame's fault
                continue
            return worker, slot

    def decode(self, buffer: FrameBytes, description: PixelDescription, uid: str,
               order: tuple[str, ...]) -> DecodedFrame | None:
        """Decode one compressed frame in a worker; None when no worker is ready yet."""
        acquired = self._acquire()
        if acquired is None:
            return None
        worker, slot = acquired
        task = next(self._tasks)
        give_back = True  # the slot returns to the pool when this call ends, unless abandoned
        try:
            block = worker.ensure_block(slot, description.frame_nbytes)
            try:
                worker.send((task, replace(description, palette=None), uid, order, block.name), buffer)
                reply = worker.receive(task)
            except (EOFError, OSError) as exc:
                self._retire(worker, replace_it=True)
                code = worker.process.poll()
                raise InvalidImageError(
                    f"the decode worker process exited (code {code}) while decoding this frame; the data "
                    "probably crashed the codec") from exc
            except LoadstoneError:
                # Cancelled or timed out while the worker decodes: nothing interrupts a codec,
                # so the answer is dropped when it comes and the slot freed then.
                give_back = False
                worker.abandon(task, slot)
                raise
            if reply[1] == "error":
                error = reply[2]
                raise error if isinstance(error, LoadstoneError) else InvalidImageError(str(error))
            _, _, shape, dtype, photometric, low, high, decoder, decode_ms = reply
            pixels = np.ndarray(shape, dtype=np.dtype(dtype), buffer=block.buf).copy()
            return DecodedFrame(pixels, photometric, low, high, f"{decoder} (pool)", decode_ms)
        finally:
            if give_back:
                self._slot_free(worker, slot)


_pool_lock = threading.Lock()
_pool: DecodePool | None = None
_in_flight = 0
_counter_lock = threading.Lock()


def get_pool() -> DecodePool:
    """The process-wide pool (created, not started, on first call)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._closed:
            _pool = DecodePool(worker_count())
        return _pool


def start(wait: bool = True) -> DecodePool:
    """Start the pool now (e.g. before loading a series) rather than on first need."""
    pool = get_pool()
    pool.start(wait=wait)
    return pool


def shutdown() -> None:
    """Stop the pool's processes and free its shared memory (a later need starts a new pool)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown()


atexit.register(shutdown)


def _wanted(uid: str, busy: int) -> bool:
    mode = get_config().decode_pool
    if mode == "never":
        return False
    if mode == "always":
        return True
    return uid in POOL_SYNTAXES and busy >= 2


def decode(buffer: FrameBytes, description: PixelDescription, uid: str, order: tuple[str, ...],
           local: Callable[[], DecodedFrame]) -> DecodedFrame:
    """Decode a compressed frame in the pool when it pays (see the module doc), else ``local()``.

    Frames decoding in this process at the same moment are counted; the
    first decodes in-thread, the ones that overlap it go to the pool.
    """
    global _in_flight
    with _counter_lock:
        _in_flight += 1
        busy = _in_flight
    try:
        if _wanted(uid, busy):
            decoded = get_pool().decode(buffer, description, uid, order)
            if decoded is not None:
                return decoded
        return local()
    finally:
        with _counter_lock:
            _in_flight -= 1


def describe() -> str:
    """One line for ``loadstone plugins``."""
    mode = get_config().decode_pool
    pool = _pool
    running = f", {pool.ready_workers} running" if pool is not None else ", not started"
    return f"{mode} ({worker_count()} worker processes{running})"
