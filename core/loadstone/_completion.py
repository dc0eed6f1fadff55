"""Waiting on many loads: :func:`as_completed`, and the progress bar that follows it.

``as_completed`` yields load objects as they settle (like
:func:`concurrent.futures.as_completed`), woken by each settle and by the
current load's cancel, never by polling.  ``progress=True`` on
``load_images`` / ``load_volume`` draws a tqdm bar on stderr (a terminal or a
notebook); in a log file or a pipe tqdm writes nothing but the final line.
"""

from __future__ import annotations

import queue
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

from ._context import current_load
from ._load_object import ImageLoadObject
from .errors import LoadTimeoutError

__all__ = ["as_completed", "progress_bar", "follow_progress"]


def as_completed(loads: Iterable[ImageLoadObject], timeout: float | None = None,
                 progress: bool | Any = False) -> Iterator[ImageLoadObject]:
    """Yield each load object once it is done (succeeded, failed or cancelled), first done first.

    ``timeout`` bounds the whole iteration (:class:`LoadTimeoutError`
    naming how many were still pending).  ``progress=True`` shows a bar;
    a tqdm instance may be given instead to advance one of yours.  Inside a
    load, its cancel or deadline stops the wait.
    """
    pending = list(loads)
    done: queue.SimpleQueue[ImageLoadObject] = queue.SimpleQueue()
    for load_object in pending:
        load_object.promise.add_done_callback(partial(_put, done, load_object))
    ends = None if timeout is None else time.monotonic() + timeout
    context = current_load()
    unregister = context.on_cancel(lambda: done.put(_WAKE)) if context is not None else None
    bar = progress_bar(len(pending), progress)
    try:
        for _ in range(len(pending)):
            while True:
                if context is not None:
                    context.check()
                wait = None if ends is None else max(0.0, ends - time.monotonic())
                remaining = None if context is None else context.remaining()
                if remaining is not None:
                    wait = remaining if wait is None else min(wait, remaining)
                try:
                    item = done.get(timeout=wait)
                except queue.Empty:
                    if context is not None:
                        context.check()
                    left = sum(not load_object.done() for load_object in pending)
                    raise LoadTimeoutError(f"{left} of {len(pending)} loads still running after "
                                           f"{timeout:g} s") from None
                if item is not _WAKE:
                    break
            if bar is not None:
                bar.update(1)
            yield item
    finally:
        if unregister is not None:
            unregister()
        if bar is not None and bar is not progress:
            bar.close()


def _put(done: queue.SimpleQueue[ImageLoadObject], load_object: ImageLoadObject, _promise: object) -> None:
    done.put(load_object)


class _Wake(ImageLoadObject):
    """Put in the queue by a cancel, to wake the waiting thread."""


_WAKE = _Wake()


def follow_progress(loads: list[ImageLoadObject], progress: bool | Any,
                    description: str = "loading") -> None:
    """Advance a bar as each of ``loads`` settles (from whichever thread settles it); close it after."""
    bar = progress_bar(len(loads), progress, description)
    if bar is None:
        return
    lock = threading.Lock()
    left = [len(loads)]

    def settled(_promise: object) -> None:
        bar.update(1)
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last and bar is not progress:
            bar.close()

    if not loads:
        settled(None)
    for load in loads:
        load.promise.add_done_callback(settled)


def progress_bar(total: int, progress: bool | Any, description: str = "loading") -> Any:
    """A tqdm bar for ``total`` items when ``progress`` is True (or the tqdm given), else None."""
    if progress is False or progress is None:
        return None
    if progress is not True:
        return progress  # the caller's own bar
    # Imported on first use: tqdm takes longer to import than loadstone itself.
    from tqdm.auto import tqdm  # the one progress library: terminals and notebooks alike

    in_notebook = "notebook" in tqdm.__module__
    if not in_notebook and not _is_terminal(sys.stderr):
        return None  # a log or a pipe gets no bar (and no escape codes)

    # No monitor thread: the bar is updated often enough (and tests count threads).
    bar_type: Any = type("LoadstoneBar", (tqdm,), {"monitor_interval": 0})
    # A pseudo-terminal may report 0 x 0 (tqdm then draws nothing): take the environment's size.
    size = shutil.get_terminal_size((100, 24))
    width = None if in_notebook else max(40, size.columns)
    height = None if in_notebook else max(10, size.lines)
    return bar_type(total=total, desc=description, unit="img", file=None if in_notebook else sys.stderr,
                    leave=True, ncols=width, nrows=height, mininterval=0.2)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
