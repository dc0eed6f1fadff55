"""The :class:`ImageLoadObject`: what every loader returns at once."""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from .errors import LoadCancelledError, LoadstoneError, LoadTimeoutError

if TYPE_CHECKING:
    from ._image import Image

__all__ = ["ImageLoadObject", "settle"]


class ImageLoadObject:
    """A pending (or finished) image load.

    ``promise`` is a :class:`concurrent.futures.Future` that the loader
    completes; ``cancel_fn`` stops the work behind it, ``decache`` frees what
    the loader keeps once the cache evicts the image.  Use it synchronously
    (:meth:`result`) or ``await`` it inside asyncio.
    """

    __slots__ = ("image_id", "promise", "cancel_fn", "decache", "run_inline", "__weakref__")

    def __init__(
        self,
        promise: concurrent.futures.Future[Image] | None = None,
        cancel_fn: Callable[[], None] | None = None,
        decache: Callable[[], None] | None = None,
        image_id: str = "",
    ) -> None:
        self.promise: concurrent.futures.Future[Image] = (
            promise if promise is not None else concurrent.futures.Future()
        )
        self.cancel_fn = cancel_fn
        self.decache = decache
        self.image_id = image_id
        #: Set by loadstone while the work waits for a thread: :meth:`result` runs it on the
        #: waiting thread instead (no hand-off), and it returns at once if a worker took it.
        self.run_inline: Callable[[], None] | None = None

    @classmethod
    def from_image(cls, image: Image) -> ImageLoadObject:
        """A load object that is already done (for synchronous sources)."""
        promise: concurrent.futures.Future[Image] = concurrent.futures.Future()
        promise.set_result(image)
        return cls(promise, image_id=image.image_id)

    def result(self, timeout: float | None = None) -> Image:
        """Wait for the image; raises the load's typed error.

        A ``timeout`` here only bounds the wait: the load goes on, and
        :class:`LoadTimeoutError` says it was still running.  Waiting with no
        timeout on a load whose work has not started yet runs it on this
        thread: the caller blocks anyway, and the hand-off to a worker costs
        more than the work of a small image.
        """
        promise = self.promise
        run_inline = self.run_inline
        if run_inline is not None and timeout is None and not promise.done():
            run_inline()
        try:
            return promise.result(timeout)
        except LoadstoneError:
            raise
        except concurrent.futures.CancelledError:
            raise LoadCancelledError("load cancelled", image_id=self.image_id) from None
        except concurrent.futures.TimeoutError:  # the builtin TimeoutError only from 3.11
            raise LoadTimeoutError(
                f"load still running after waiting {timeout} s", image_id=self.image_id
            ) from None

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The load's error, or None once it succeeded."""
        try:
            self.result(timeout)
        except LoadstoneError as exc:
            return exc
        return None

    def cancel(self) -> bool:
        """Stop the load: call ``cancel_fn``, then cancel the promise.  False if already done."""
        if self.promise.done():
            return False
        if self.cancel_fn is not None:
            self.cancel_fn()
        self.promise.cancel()
        return True

    def done(self) -> bool:
        """True once the load finished, failed or was cancelled."""
        return self.promise.done()

    def add_done_callback(self, callback: Callable[[ImageLoadObject], Any]) -> None:
        """Call ``callback(self)`` when the load settles (at once if it has)."""
        self.promise.add_done_callback(lambda _promise: callback(self))

    def __await__(self) -> Generator[Any, None, Image]:
        return self._wait_async().__await__()

    async def _wait_async(self) -> Image:
        import asyncio

        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()

        def wake(_: object) -> None:
            # RuntimeError: the awaiting loop has closed, nobody waits any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, waiter)

        # Not asyncio.wrap_future: cancelling the awaiting task must not
        # cancel a load that other callers (the cache) share.
        self.promise.add_done_callback(wake)
        await waiter
        return self.result(0)

    def __repr__(self) -> str:
        state = "done" if self.promise.done() else "pending"
        return f"<ImageLoadObject {self.image_id!r} {state}>"


def _resolve(waiter: Any) -> None:
    if not waiter.done():
        waiter.set_result(None)


def settle(promise: concurrent.futures.Future[Any], value: Any = None,
           error: BaseException | None = None) -> bool:
    """Complete ``promise`` unless it already is (cancel races); True if this call did."""
    if promise.done():
        return False
    try:
        if error is not None:
            promise.set_exception(error)
        else:
            promise.set_result(value)
    except concurrent.futures.InvalidStateError:
        return False
    return True
