"""When and how long to wait before trying a request again.

Only failures that are likely to pass are retried: connection errors, and
429/502/503/504 answers to idempotent methods.  Waits grow exponentially
(with jitter, so many loads hitting one overloaded server do not retry in
lock step) unless the server says how long with ``Retry-After``.
"""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

from .._context import LoadContext
from ..toolkit.numbers import is_ascii_int

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_AFTER_STATUSES",
    "RETRY_STATUSES",
    "RetryPolicy",
    "parse_retry_after",
    "sleep",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and how long to wait in between.

    ``retries`` is the number of *extra* attempts.  The n-th retry waits
    ``backoff_base * 2**(n-1)`` seconds (capped at ``backoff_max``, times a
    random factor in [0.5, 1]).  A ``Retry-After`` above ``retry_after_max``
    is not waited for: the request fails at once.
    """

    retries: int = 3
    backoff_base: float = 0.25
    backoff_max: float = 10.0
    retry_after_max: float = 120.0

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        delay = min(self.backoff_max, self.backoff_base * 2.0 ** max(0, retry - 1))
        return delay * (0.5 + random.random() / 2)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or HTTP date).

    ``None`` when absent or unreadable; a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():  # also '²', or thousands of digits: only bounded ASCII digits count
        return float(value) if is_ascii_int(value, max_digits=10) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def sleep(seconds: float, ctx: LoadContext | None) -> bool:
    """Wait ``seconds``; with a load running, wake early when it is cancelled.

    Returns True if the load was cancelled during the wait.
    """
    if seconds <= 0:
        return ctx is not None and ctx.cancelled
    if ctx is None:
        time.sleep(seconds)
        return False
    return ctx.wait(seconds)
