"""The per-load context: cancellation, deadline and progress for running work.

A loader's slow work runs on another thread; cancelling it must *stop* that
work, not just forget its result.  The context is how: blocking resources
(sockets, subprocesses) register a callback with :meth:`LoadContext.on_cancel`
that unblocks them, and cooperative code calls :meth:`LoadContext.check`.
The running context is found with :func:`current_load`, so layers such as
:mod:`loadstone.http` honour it without any plumbing through arguments.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import LoadCancelledError, LoadstoneError, LoadTimeoutError

__all__ = ["LoadContext", "current_load", "use_load_context"]

_log = logging.getLogger("loadstone")

ProgressCallback = Callable[[int, "int | None"], None]

_current: contextvars.ContextVar[LoadContext | None] = contextvars.ContextVar(
    "loadstone_current_load", default=None
)


class LoadContext:
    """Cancellation token, deadline and progress reporter of one load."""

    __slots__ = (
        "image_id",
        "deadline",
        "_limit",
        "_lock",
        "_event",
        "_reason",
        "_callbacks",
        "_progress",
    )

    def __init__(
        self,
        image_id: str,
        *,
        timeout: float | None = None,
        progress: ProgressCallback | None = None,
        deadline: float | None = None,
        limit: float | None = None,
    ) -> None:
        self.image_id = image_id
        if timeout is not None:
            deadline = time.monotonic() + timeout
            limit = timeout
        #: The load's ``timeout`` in seconds, for the message when it passes (None: unknown).
        self._limit = limit
        #: When the load must end (:func:`time.monotonic` seconds), if ever.
        self.deadline: float | None = deadline
        self._lock = threading.Lock()
        self._event: threading.Event | None = None  # made by the first wait()
        self._reason: LoadstoneError | None = None
        self._callbacks: dict[int, Callable[[], Any]] | None = None
        self._progress = progress

    # -- state -------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        """True once the load was cancelled or timed out."""
        return self._reason is not None

    @property
    def reason(self) -> LoadstoneError | None:
        """The error the load ends with once cancelled (``None`` before)."""
        return self._reason

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), ``None`` if none."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    def check(self) -> None:
        """Raise the cancellation (or timeout) error if the load should stop."""
        if self._reason is not None:
            raise self._fresh_reason()
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.cancel(self.timeout_error())
            raise self._fresh_reason()

    def timeout_error(self) -> LoadTimeoutError:
        """The error of a load whose deadline passed (the same words however it is noticed)."""
        if self._limit is None:
            return LoadTimeoutError("load timed out", image_id=self.image_id)
        return LoadTimeoutError(f"load did not finish within {self._limit:g} s", image_id=self.image_id)

    def _fresh_reason(self) -> LoadstoneError:
        reason = self._reason
        assert reason is not None
        # A new instance per raise keeps tracebacks of different threads apart.
        fresh = type(reason).__new__(type(reason))
        fresh.__dict__.update(reason.__dict__)
        fresh.args = reason.args
        return fresh

    # -- cancellation ----------------------------------------------------------
    def cancel(self, reason: LoadstoneError | None = None) -> bool:
        """Stop the load; run every registered callback once.  False if already stopped."""
        with self._lock:
            if self._reason is not None:
                return False
            self._reason = reason or LoadCancelledError("load cancelled", image_id=self.image_id)
            if self._event is not None:
                self._event.set()
            callbacks = list(self._callbacks.values()) if self._callbacks else []
            self._callbacks = None
        for callback in callbacks:
            _run_quietly(callback)
        return True

    def timeout(self) -> bool:
        """Cancel with :class:`LoadTimeoutError` (called when the deadline passes)."""
        return self.cancel(self.timeout_error())

    def on_cancel(self, callback: Callable[[], Any]) -> Callable[[], None]:
        """Call ``callback`` when the load is cancelled; returns an unregister function.

        If the load is already cancelled the callback runs at once.
        """
        key = id(callback) ^ id(object())
        with self._lock:
            if self._reason is None:
                if self._callbacks is None:
                    self._callbacks = {}
                self._callbacks[key] = callback
                return lambda: self._unregister(key)
        _run_quietly(callback)
        return _noop

    def _unregister(self, key: int) -> None:
        with self._lock:
            if self._callbacks is not None:
                self._callbacks.pop(key, None)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking early on cancel; True if cancelled."""
        event = self._event
        if event is None:
            with self._lock:
                if self._event is None:
                    self._event = threading.Event()
                    if self._reason is not None:
                        self._event.set()
                event = self._event
        return event.wait(max(0.0, seconds))

    # -- progress ----------------------------------------------------------
    def report_progress(self, loaded: int, total: int | None = None) -> None:
        """Tell listeners how far the load is (bytes or frames; ``total`` if known)."""
        if self._progress is not None:
            try:
                self._progress(loaded, total)
            except Exception:  # a listener never breaks a load
                _log.exception("progress callback failed for %r", self.image_id)


def _noop() -> None:
    return None


def _run_quietly(callback: Callable[[], Any]) -> None:
    try:
        callback()
    except Exception:
        _log.debug("cancel callback %r raised", callback, exc_info=True)


def current_load() -> LoadContext | None:
    """The context of the load running on this thread or task, if any."""
    return _current.get()


class use_load_context:  # noqa: N801 - used like a function in ``with``
    """Make ``context`` the current load for the duration of a ``with`` block."""

    __slots__ = ("_context", "_token")

    def __init__(self, context: LoadContext | None) -> None:
        self._context = context
        self._token: contextvars.Token[LoadContext | None] | None = None

    def __enter__(self) -> LoadContext | None:
        self._token = _current.set(self._context)
        return self._context

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _current.reset(self._token)
