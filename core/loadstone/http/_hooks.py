"""Run ``before_send`` hooks, plain functions or coroutines alike.

Requests are synchronous (they run on a loader's worker thread), so an
``async def`` hook is driven to completion right here: with ``asyncio.run``
when no event loop runs in this thread, else on a helper thread with its own
loop (the current loop is blocked by this very call and could not run it).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from ..errors import LoadstoneError, TransportError
from ._models import HttpRequest

__all__ = ["BeforeSend", "run_hooks"]

BeforeSend = Callable[[HttpRequest], "Awaitable[object] | object"]

_T = TypeVar("_T")


def run_hooks(hooks: Iterable[BeforeSend | None], request: HttpRequest, image_id: str | None) -> None:
    """Call each hook with the mutable ``request``; awaitables are awaited.

    A hook's own loadstone error passes through; anything else it raises
    becomes a TransportError (e.g. a token endpoint that is down).
    """
    for hook in hooks:
        if hook is None:
            continue
        try:
            result = hook(request)
            if inspect.isawaitable(result):
                _run_awaitable(result)
        except LoadstoneError:
            raise
        except Exception as exc:
            raise TransportError(
                f"before_send hook {getattr(hook, '__qualname__', hook)!r} failed: {exc}",
                image_id=image_id,
                url=request.url,
            ) from exc


async def _await(awaitable: Awaitable[_T]) -> _T:
    return await awaitable


def _run_awaitable(awaitable: Awaitable[Any]) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(awaitable))
    # Called synchronously from inside a running loop: run on a helper thread.
    context = contextvars.copy_context()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = context.run(asyncio.run, _await(awaitable))
        except BaseException as exc:  # handed to the calling thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="loadstone-http-hook", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
