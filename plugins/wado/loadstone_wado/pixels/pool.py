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
  worker silent for 60 s is stopped and replaced).  Waits (for a free slot,
  for an answer) are woken by the event itself or by the load's cancel or
  deadline (:func:`loadstone.toolkit.wait_result`), never by polling.  A worker that dies while
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
import collections
import concurrent.futures
import contextlib
import itertools
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from loadstone import InvalidImageError, LoadstoneError
from loadstone.toolkit import Timer, call_later, wait_result

from ..config import get_config
from ..dicom.description import PixelDescription
from ..dicom.syntaxes import HTJ2K_SYNTAXES, J2K_SYNTAXES, JPEG_LOSSLESS, JPEG_LOSSLESS_SV1, JPEG_LS_SYNTAXES
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
POOL_SYNTAXES = (frozenset({JPEG_LOSSLESS, JPEG_LOSSLESS_SV1}) | JPEG_LS_SYNTAXES | J2K_SYNTAXES
                 | HTJ2K_SYNTAXES)
_MIN_BLOCK = 1 << 20
_READY_TIMEOUT = 60.0
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
    it work.  A reader thread of its own receives the answers (blocking, in
    order) and hands each to the future of its task; the socket closing
    (the process exited) fails the futures still waiting.
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
        self._lock = threading.Lock()
        self._pending: dict[int, concurrent.futures.Future[Any]] = {}
        self._abandoned: dict[int, tuple[int, Timer]] = {}  # task -> (slot, its deadline), answered to nobody
        self._reader: threading.Thread | None = None
        self.on_slot_free: Callable[[_Worker, int], None] = lambda worker, slot: None

    def wait_ready(self, timeout: float) -> bool:
        """Wait for the process's first message; then start reading its answers."""
        if not self.conn.poll(timeout):
            return False
        message = self.conn.recv()
        if not (isinstance(message, tuple) and message[:1] == ("ready",)):
            return False
        self._reader = threading.Thread(target=self._read, name=f"loadstone-decode-reader-{self.number}",
                                        daemon=True)
        self._reader.start()
        return True

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

    def send(self, task: int, message: tuple[Any, ...], frame: FrameBytes) -> concurrent.futures.Future[Any]:
        """Queue ``task`` in the worker's socket; its answer arrives in the returned future."""
        answer: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self.dead:
                raise EOFError("the worker exited")
            self._pending[task] = answer
        with self._send_lock:
            self.conn.send(message)
            self.conn.send_bytes(frame)
        return answer

    def _read(self) -> None:
        """The reader thread: answers to their futures until the socket closes."""
        try:
            while True:
                reply = self.conn.recv()
                with self._lock:
                    answer = self._pending.pop(reply[0], None)
                    abandoned = self._abandoned.pop(reply[0], None)
                if answer is not None:
                    answer.set_result(reply)
                elif abandoned is not None:
                    abandoned[1].cancel()
                    self.on_slot_free(self, abandoned[0])
        except (EOFError, OSError):
            pass  # the process exited, or this end was closed
        with self._lock:
            self.dead = True
            pending, self._pending = self._pending, {}
            abandoned_tasks, self._abandoned = self._abandoned, {}
        for answer in pending.values():
            answer.set_exception(EOFError("the worker exited"))
        for _, deadline in abandoned_tasks.values():
            deadline.cancel()
        if not self.retired:
            self.on_slot_free(self, -1)  # died while idle or decoding: replaced

    def abandon(self, task: int, slot: int) -> None:
        """Give up waiting for ``task``: its slot frees itself when the answer comes."""
        with self._lock:
            answered = task not in self._pending
            if not answered:
                del self._pending[task]
                self._abandoned[task] = (slot, call_later(_ABANDON_TIMEOUT, lambda: self._overdue(task)))
        if answered:
            self.on_slot_free(self, slot)

    def _overdue(self, task: int) -> None:
        """Timer callback: an abandoned frame still unanswered after :data:`_ABANDON_TIMEOUT`."""
        with self._lock:
            if task not in self._abandoned or self.retired or self.dead:
                return
            self.dead = True
        _log.warning("decode worker %d did not finish an abandoned frame in %.0f s; stopping it",
                     self.number, _ABANDON_TIMEOUT)
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
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout)  # it sees the socket close: the fd is not closed under it
        with contextlib.suppress(OSError):
            self.conn.close()
        for slot in range(_SLOTS):
            self._release(slot)


#: A worker slot handed out, or None: no worker is left (decode in-thread).
_Waiter = concurrent.futures.Future[tuple[_Worker, int] | None]


class DecodePool:
    """Decode worker processes, handed out one slot (frame) at a time, :data:`_SLOTS` per worker."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a decode pool needs at least one worker")
        self.size = workers
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a worker became ready, or failed to
        self._slots: queue.Queue[tuple[_Worker, int]] = queue.Queue()  # free slots
        # Callers waiting for a slot, first come first served; None tells them no worker is left.
        self._waiters: collections.deque[_Waiter] = collections.deque()
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
        """Start missing workers in the background (``wait``: until all are ready, or failed)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the decode pool was shut down")
            missing = self.size - self._ready - self._starting
            self._starting += max(0, missing)
        for _ in range(max(0, missing)):
            thread = threading.Thread(target=self._start_one, name="loadstone-decode-start", daemon=True)
            thread.start()
        if wait:
            with self._changed:
                self._changed.wait_for(lambda: self._ready >= self.size or self._starting == 0, timeout)

    def _start_one(self) -> None:
        worker = None
        try:
            worker = _Worker(next(self._numbers))
            worker.on_slot_free = self._slot_free
            ok = worker.wait_ready(_READY_TIMEOUT)
        except Exception:
            _log.warning("a decode worker failed to start", exc_info=True)
            ok = False
        with self._lock:
            self._starting -= 1
            self._changed.notify_all()
            if ok and worker is not None and not self._closed:
                self._workers.add(worker)
                self._ready += 1
                for slot in range(_SLOTS):
                    self._hand_out(worker, slot)
                return
        if worker is not None:
            worker.retired = True
            worker.stop(graceful=False)

    def _hand_out(self, worker: _Worker, slot: int) -> None:
        """A free slot to the first waiting caller, else to the free list (lock held)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result((worker, slot))
                return
        self._slots.put((worker, slot))

    def _slot_free(self, worker: _Worker, slot: int) -> None:
        if slot < 0 or worker.dead:
            self._retire(worker, replace_it=True)
            return
        with self._lock:
            if not worker.retired:
                self._hand_out(worker, slot)

    def _retire(self, worker: _Worker, replace_it: bool) -> None:
        with self._lock:
            if worker.retired:
                return
            worker.retired = True
            if worker in self._workers:
                self._workers.discard(worker)
                self._ready -= 1
            if self._ready == 0:
                self._release_waiters()
        worker.stop(graceful=False)
        if replace_it and not self._closed:
            with contextlib.suppress(RuntimeError):  # shut down meanwhile
                self.start()

    def _release_waiters(self) -> None:
        """No worker is left: the waiting callers decode in their own threads (lock held)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def shutdown(self, timeout: float = 2.0) -> None:
        """Stop every worker and unlink every shared-memory block."""
        with self._lock:
            self._closed = True
            workers = list(self._workers)
            self._workers.clear()
            self._ready = 0
            self._release_waiters()
            self._changed.notify_all()
        for worker in workers:
            worker.retired = True
            worker.stop(graceful=True, timeout=timeout)

    # -- work --------------------------------------------------------------
    def _acquire(self) -> tuple[_Worker, int] | None:
        """A free slot of a live worker; None (decode in-thread) while no worker is ready."""
        if self._ready == 0:
            if not self._closed:
                self.start()
            return None
        while True:
            with self._lock:
                if self._ready == 0:
                    return None
                try:
                    worker, slot = self._slots.get_nowait()
                except queue.Empty:
                    waiter: _Waiter = concurrent.futures.Future()
                    self._waiters.append(waiter)
                else:
                    waiter = _given(worker, slot)
            acquired = self._wait_for_slot(waiter)
            if acquired is None:
                return None
            worker, slot = acquired
            if worker.retired:
                continue  # a slot of a stopped worker: dropped
            if worker.dead or worker.process.poll() is not None:
                self._retire(worker, replace_it=True)  # died while idle: not this frame's fault
                continue
            return worker, slot

    def _wait_for_slot(self, waiter: _Waiter) -> tuple[_Worker, int] | None:
        """The slot handed to ``waiter``; this load's cancel or deadline ends the wait (the slot goes on)."""
        try:
            return wait_result(waiter)
        except BaseException:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                    handed = None
                else:
                    handed = waiter.result() if waiter.done() else None
                if handed is not None:
                    self._hand_out(*handed)
            raise

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
                answer = worker.send(task, (task, replace(description, palette=None), uid, order, block.name),
                                     buffer)
                reply = wait_result(answer)
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


def _given(worker: _Worker, slot: int) -> _Waiter:
    """A future already holding a slot taken from the free list."""
    done: _Waiter = concurrent.futures.Future()
    done.set_result((worker, slot))
    return done


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
