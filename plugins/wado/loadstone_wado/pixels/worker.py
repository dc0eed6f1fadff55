"""A decode-pool process: ``python -m loadstone_wado.pixels.worker FD``.

Started by :mod:`loadstone_wado.pixels.pool` with one end of a socket pair
as ``FD``.  Reads ``(task_id, description, uid, order, shm_name)`` plus the
frame's bytes, decodes with :func:`loadstone_wado.pixels.stored.decode_stored`,
writes the pixels into the named shared-memory block and answers with their
shape and dtype (or the error).  Exits when the socket closes: if the parent
dies, so does this process.

Launched as its own module rather than through ``multiprocessing`` so that
nothing of the parent program (its ``__main__``) is imported again here.
"""

from __future__ import annotations

import os
import signal
import sys
from multiprocessing import resource_tracker, shared_memory
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from loadstone import InvalidImageError, LoadstoneError

from .stored import decode_stored

__all__ = ["main"]


def _attach(name: str, cache: dict[str, Any]) -> Any:
    """Map the parent's shared-memory block; the parent alone creates and unlinks blocks."""
    block = cache.get(name)
    if block is None:
        for old in cache.values():
            old.close()
        cache.clear()
        # Attaching must not register the block with a tracker of this process, which
        # would unlink the parent's block when this process exits (bpo-38119).
        register = resource_tracker.register
        resource_tracker.register = lambda *args, **kwargs: None
        try:
            block = shared_memory.SharedMemory(name=name)
        finally:
            resource_tracker.register = register
        cache[name] = block
    return block


def _serve(conn: Connection) -> None:
    blocks: dict[str, Any] = {}
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message is None:
            break
        task_id, description, uid, order, shm_name = message
        try:
            frame = conn.recv_bytes()
            decoded = decode_stored(frame, description, uid, 0, order)
            pixels = np.ascontiguousarray(decoded.pixels)
            block = _attach(shm_name, blocks)
            if pixels.nbytes > block.size:
                raise InvalidImageError(f"the decoded frame ({pixels.nbytes} bytes) is larger than its "
                                        f"description promises ({block.size} bytes)")
            np.ndarray(pixels.shape, dtype=pixels.dtype, buffer=block.buf)[...] = pixels
            reply: tuple[Any, ...] = (task_id, "ok", pixels.shape, pixels.dtype.str,
                                      decoded.photometric_interpretation, decoded.minimum, decoded.maximum,
                                      decoded.decoder, decoded.decode_ms)
        except LoadstoneError as exc:
            reply = (task_id, "error", exc)
        except Exception as exc:  # a codec's own exception: typed for the caller
            reply = (task_id, "error", InvalidImageError(f"decoding failed: {type(exc).__name__}: {exc}"))
        try:
            conn.send(reply)
        except (EOFError, OSError):
            break
    for block in blocks.values():
        block.close()


def main(argv: list[str] | None = None) -> int:
    """Serve decode requests on the socket whose file descriptor is ``argv[0]``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m loadstone_wado.pixels.worker FD", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # Codec libraries may print to stdout; keep fd 1 away from anything that matters.
    os.dup2(2, 1)
    os.environ["LOADSTONE_WADO_DECODE_POOL"] = "never"  # a worker never starts a pool of its own
    conn = Connection(int(args[0]))
    try:
        _serve(conn)
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
