"""The total time budget of one request.

A request may be given its own ``timeout`` and may also run inside a load
with a deadline; whichever ends first bounds every connect, read and sleep.
"""

from __future__ import annotations

import time

from .._context import LoadContext
from ..errors import LoadstoneError, LoadTimeoutError

__all__ = ["Deadline", "interruption"]


class Deadline:
    """When the request must be finished by (``at``, monotonic seconds), if ever."""

    __slots__ = ("_ctx", "at", "timeout")

    def __init__(self, timeout: float | None, ctx: LoadContext | None) -> None:
        now = time.monotonic()
        self.timeout = timeout
        self._ctx = ctx
        ends: list[float] = []
        if timeout is not None:
            ends.append(now + max(0.0, timeout))
        if ctx is not None and ctx.deadline is not None:
            ends.append(ctx.deadline)
        self.at: float | None = min(ends) if ends else None

    def remaining(self) -> float | None:
        """Seconds left (never negative), ``None`` when unbounded."""
        if self.at is None:
            return None
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def cap(self, seconds: float) -> float:
        """``seconds`` shortened to the time left; never zero (urllib3 rejects 0)."""
        left = self.remaining()
        if left is not None and left < seconds:
            seconds = left
        return max(seconds, 0.001)

    def error(self, url: str) -> LoadstoneError:
        """The error for running out of time.

        When the load's own deadline is the one that passed, the load is
        timed out through its context, so every layer agrees on the reason.
        """
        ctx = self._ctx
        if ctx is not None:
            try:
                ctx.check()
            except LoadstoneError as exc:
                return exc
        budget = f"timeout of {self.timeout:g} s" if self.timeout is not None else "deadline"
        return LoadTimeoutError(
            f"request to {url} exceeded its total {budget}",
            image_id=ctx.image_id if ctx is not None else None,
        )


def interruption(ctx: LoadContext | None, deadline: Deadline, url: str) -> LoadstoneError | None:
    """The error to stop with if the load was cancelled or time is up, else ``None``."""
    if ctx is not None and ctx.cancelled:
        try:
            ctx.check()
        except LoadstoneError as exc:
            return exc
    if deadline.expired():
        return deadline.error(url)
    return None
