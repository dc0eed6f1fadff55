"""Turn a plain ``(image_id, options) -> Image`` function into an image loader.

A plugin author writes the function; :func:`image_loader` makes it return an
:class:`ImageLoadObject` at once, runs it on a worker thread (or, for an
``async def``, on loadstone's event-loop thread), makes the
:class:`LoadContext` current so cancellation reaches sockets, enforces the
``timeout`` option, reports progress as events and types every failure.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ._context import LoadContext, use_load_context
from ._image import Image
from ._load_object import ImageLoadObject, settle
from ._timer import call_later
from .errors import ImageLoadError, LoadstoneError, PluginError

if TYPE_CHECKING:
    import asyncio

__all__ = ["ImageLoader", "LoadFunction", "image_loader", "as_load_error", "worker_executor"]


class ImageLoader(Protocol):
    """``(image_id, options) -> ImageLoadObject``, returning at once."""

    def __call__(self, image_id: str, options: Mapping[str, Any], /) -> ImageLoadObject: ...


LoadFunction = Callable[[str, Mapping[str, Any]], "Image | Awaitable[Image]"]

_executor: concurrent.futures.Executor | None = None
_executor_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def worker_executor() -> concurrent.futures.Executor:
    """The shared pool of daemon threads that runs plain loader functions.

    Size: ``LOADSTONE_MAX_WORKERS`` or 16 — loads are mostly I/O and GIL-free decode.
    """
    global _executor
    if _executor is None:
        with _executor_lock:
            if _executor is None:
                from ._workers import DaemonThreadPool

                workers = int(os.environ.get("LOADSTONE_MAX_WORKERS", "16"))
                _executor = DaemonThreadPool(max(1, workers), thread_name_prefix="loadstone-worker")
    return _executor


def _event_loop() -> asyncio.AbstractEventLoop:
    import asyncio

    global _loop
    if _loop is None:
        with _loop_lock:
            if _loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="loadstone-asyncio", daemon=True)
                thread.start()
                _loop = loop
    return _loop


def as_load_error(exc: BaseException, image_id: str, what: str = "load failed") -> LoadstoneError:
    """Type an arbitrary failure: loadstone errors pass (image id filled in), others are wrapped."""
    if isinstance(exc, LoadstoneError):
        if exc.image_id is None:
            exc.image_id = image_id
        return exc
    error = ImageLoadError(f"{what}: {type(exc).__name__}: {exc}", image_id=image_id)
    error.__cause__ = exc
    return error


def check_image(result: object, image_id: str, source: object) -> Image:
    """The contract check on what a loader produced."""
    if not isinstance(result, Image):
        raise PluginError(
            f"loader {source!r} returned {type(result).__name__}, expected loadstone.Image",
            image_id=image_id,
        )
    return result


def _progress_reporter(image_id: str) -> Callable[[int, int | None], None]:
    from . import _state

    def report(loaded: int, total: int | None) -> None:
        events = _state.events
        if events.has_subscribers(events.IMAGE_LOAD_PROGRESS):
            percent = None if not total else 100.0 * loaded / total
            events.trigger(
                events.IMAGE_LOAD_PROGRESS,
                {"image_id": image_id, "loaded": loaded, "total": total, "percent": percent},
            )

    return report


class _FunctionLoader:
    """An ImageLoader that runs a plain or async function off the caller's thread."""

    def __init__(self, func: LoadFunction, executor: concurrent.futures.Executor | None) -> None:
        import inspect  # not at module import: it is slow and rarely needed

        self.func = func
        self.is_async = inspect.iscoroutinefunction(func)
        self._executor = executor
        functools.update_wrapper(self, func)

    def __repr__(self) -> str:
        return f"<image_loader {getattr(self.func, '__qualname__', self.func)!r}>"

    def __call__(self, image_id: str, options: Mapping[str, Any], /) -> ImageLoadObject:
        timeout = options.get("timeout") if options else None
        context = LoadContext(image_id, timeout=timeout, progress=_progress_reporter(image_id))
        promise: concurrent.futures.Future[Image] = concurrent.futures.Future()
        started = time.perf_counter()

        def finish(result: Any = None, error: BaseException | None = None) -> None:
            if error is None and context.cancelled:
                error = context.reason
            if error is not None:
                settle(promise, error=as_load_error(error, image_id))
                return
            try:
                image = check_image(result, image_id, self.func)
            except LoadstoneError as exc:
                settle(promise, error=exc)
                return
            if not image.load_time_ms:
                image.load_time_ms = (time.perf_counter() - started) * 1000.0
            settle(promise, image)

        if self.is_async:
            work = self._start_async(image_id, options, context, finish)
        else:
            work = self._start_thread(image_id, options, context, finish)

        def cancel() -> None:
            context.cancel()
            work.cancel()

        if timeout is not None:
            def expire() -> None:
                if context.timeout():
                    work.cancel()
                    settle(promise, error=context.reason)

            timer = call_later(float(timeout), expire)
            promise.add_done_callback(lambda _: timer.cancel())
        promise.add_done_callback(lambda p: p.cancelled() and context.cancel())
        return ImageLoadObject(promise, cancel, None, image_id)

    def _start_thread(
        self, image_id: str, options: Mapping[str, Any], context: LoadContext,
        finish: Callable[..., None],
    ) -> concurrent.futures.Future[Any]:
        func = self.func

        def run() -> None:
            if context.cancelled:
                return
            try:
                with use_load_context(context):
                    result = func(image_id, options)
            except BaseException as exc:
                finish(error=exc)
            else:
                finish(result)

        executor = self._executor or worker_executor()
        return executor.submit(run)

    def _start_async(
        self, image_id: str, options: Mapping[str, Any], context: LoadContext,
        finish: Callable[..., None],
    ) -> concurrent.futures.Future[Any]:
        import asyncio

        func = self.func

        async def run() -> None:
            try:
                with use_load_context(context):
                    result = await func(image_id, options)  # type: ignore[misc]
            except asyncio.CancelledError:
                finish(error=context.reason or asyncio.CancelledError())
            except BaseException as exc:
                finish(error=exc)
            else:
                finish(result)

        return asyncio.run_coroutine_threadsafe(run(), _event_loop())


def image_loader(
    func: LoadFunction | None = None,
    *,
    executor: concurrent.futures.Executor | None = None,
) -> Any:
    """Make an ImageLoader from ``func(image_id, options) -> Image`` (or ``async def``).

    Usable as ``@image_loader`` or ``image_loader(func, executor=...)``.  Inside
    ``func``, :func:`loadstone.current_load` gives the load's context: check it
    in long loops, register blocking resources with ``on_cancel``, and call
    ``report_progress``.  :mod:`loadstone.http` does all of that by itself.
    """
    if func is None:
        return functools.partial(image_loader, executor=executor)
    if not callable(func):
        raise TypeError("image_loader needs a callable (image_id, options) -> Image")
    return _FunctionLoader(func, executor)
