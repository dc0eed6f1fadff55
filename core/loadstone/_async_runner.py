"""Where ``async def`` loader functions run: one event-loop thread that loadstone owns.

Its own module because asyncio is slow to import (tens of ms, with ssl and
sockets) and only async loaders need it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from ._context import use_load_context
from ._load import Load

__all__ = ["run_async"]

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _event_loop() -> asyncio.AbstractEventLoop:
    global _loop
    loop = _loop
    if loop is None:
        with _loop_lock:
            if _loop is None:
                new = asyncio.new_event_loop()
                thread = threading.Thread(target=new.run_forever, name="loadstone-asyncio", daemon=True)
                thread.start()
                _loop = new
            loop = _loop
    return loop


def run_async(load: Load, func: Callable[..., Any]) -> None:
    """Start the coroutine ``func`` for ``load`` on loadstone's event-loop thread."""
    context = load.ensure_context()

    async def run() -> None:
        try:
            with use_load_context(context):
                result = await func(load.image_id, load.options)
        except asyncio.CancelledError:
            load.fail(context.reason or asyncio.CancelledError())
        except BaseException as exc:
            load.fail(exc)
        else:
            load.succeed(result)

    future = asyncio.run_coroutine_threadsafe(run(), _event_loop())
    context.on_cancel(future.cancel)
