"""Image loaders: the protocol, and :func:`image_loader`, which makes one of a plain function.

A plugin author writes ``(image_id, options) -> Image`` (or an ``async
def``); :func:`image_loader` turns it into an :class:`ImageLoader` that
returns an :class:`ImageLoadObject` at once.  Through ``load_image`` the
function runs as that very load (one promise, one deadline, one check); called
directly it makes a load of its own.
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, overload

from ._events import default_bus
from ._image import Image
from ._load import RUNNING, Load
from ._load_object import ImageLoadObject
from ._runner import run_in_thread

__all__ = ["ImageLoader", "LoadFunction", "BatchFunction", "FunctionLoader", "image_loader"]


class ImageLoader(Protocol):
    """``(image_id, options) -> ImageLoadObject``, returning at once."""

    def __call__(self, image_id: str, options: Mapping[str, Any], /) -> ImageLoadObject: ...


LoadFunction = Callable[[str, Mapping[str, Any]], "Image | Awaitable[Image]"]
#: ``(image_ids, options) -> iterable of Image or exception, one per id, in order``.
BatchFunction = Callable[[Sequence[str], Mapping[str, Any]], Iterable["Image | BaseException"]]


class FunctionLoader:
    """An ImageLoader that runs a plain or async function off the caller's thread."""

    def __init__(self, func: LoadFunction, executor: concurrent.futures.Executor | None,
                 options: Iterable[str] | None = None) -> None:
        self.func = func
        self._run_async: Callable[[Load, Any], None] | None = None
        if _is_coroutine_function(func):
            # Imported only for async loaders: asyncio takes tens of ms to import.
            from ._async_runner import run_async

            self._run_async = run_async
        #: The load options the function understands beyond the core's (None: it takes anything).
        self.accepted_options: frozenset[str] | None = None if options is None else frozenset(options)
        self.executor = executor
        #: Loads many ids of this loader in one call (see :meth:`batch`), or None.
        self.batch_function: BatchFunction | None = None
        functools.update_wrapper(self, func)

    def __repr__(self) -> str:
        return f"<image_loader {getattr(self.func, '__qualname__', self.func)!r}>"

    def __call__(self, image_id: str, options: Mapping[str, Any], /) -> ImageLoadObject:
        """A load of its own, outside loadstone's dispatch (not cached, not scheduled)."""
        # Progress reaches loadstone.events; the outcome events belong to whoever dispatched.
        load = Load(image_id, self, options or {}, default_bus(), notify_outcome=False)
        load_object = load.load_object
        assert load_object is not None
        load.state = RUNNING
        load.start()
        return load_object

    def start_load(self, load: Load) -> None:
        """Run the function as ``load`` (the core's request pool calls this)."""
        if self._run_async is not None:
            self._run_async(load, self.func)
        else:
            run_in_thread(load, self.func, self.executor)

    @property
    def is_async(self) -> bool:
        """True for an ``async def`` function."""
        return self._run_async is not None

    def batch(self, function: BatchFunction) -> BatchFunction:
        """Register ``function(image_ids, options)`` to load many ids of this loader at once.

        ``loadstone.load_images`` hands it the ids of one call that reach this
        loader (in groups sized for the worker threads); it yields one Image
        or exception per id, in order.  Use as a decorator::

            @load_dicomfile.batch
            def load_dicomfile_batch(image_ids, options): ...
        """
        self.batch_function = function
        return function


def _is_coroutine_function(func: Any) -> bool:
    """``inspect.iscoroutinefunction`` without importing inspect (slow), for functions and callables."""
    code = getattr(func, "__code__", None)
    if code is None:
        code = getattr(type(func).__call__, "__code__", None)
        if code is None:
            wrapped = getattr(func, "func", None)  # functools.partial
            return wrapped is not None and _is_coroutine_function(wrapped)
    return bool(code.co_flags & _CO_COROUTINE)


_CO_COROUTINE = 0x0080  # inspect.CO_COROUTINE


@overload
def image_loader(func: LoadFunction, *, executor: concurrent.futures.Executor | None = None,
                 options: Iterable[str] | None = None) -> FunctionLoader: ...


@overload
def image_loader(func: None = None, *, executor: concurrent.futures.Executor | None = None,
                 options: Iterable[str] | None = None) -> Callable[[LoadFunction], FunctionLoader]: ...


def image_loader(
    func: LoadFunction | None = None,
    *,
    executor: concurrent.futures.Executor | None = None,
    options: Iterable[str] | None = None,
) -> FunctionLoader | Callable[[LoadFunction], FunctionLoader]:
    """Make an ImageLoader from ``func(image_id, options) -> Image`` (or ``async def``).

    Usable as ``@image_loader``, ``@image_loader(options=("frame_cache",))`` or
    ``image_loader(func, executor=...)``.  ``options`` names the load options
    the function understands beyond the core's (``priority``, ``request_type``,
    ``timeout``, ``headers``, ``ignore_cache``): any other is then refused
    with a "did you mean" at ``load_image`` (without it, everything is passed
    on and only near-misses of the core's options are refused).  Inside
    ``func``, :func:`loadstone.current_load` gives the load's context: check it
    in long loops, register blocking resources with ``on_cancel``, and call
    ``report_progress``.  :mod:`loadstone.http` does all of that by itself.
    """
    if func is None:
        return functools.partial(image_loader, executor=executor, options=options)
    if not callable(func):
        raise TypeError("image_loader needs a callable (image_id, options) -> Image")
    if isinstance(options, str):
        raise TypeError("options is a collection of option names, not one str")
    return FunctionLoader(func, executor, options)
