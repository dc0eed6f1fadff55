"""The image loader of the ``http``, ``https`` and ``web`` schemes."""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import loadstone
from loadstone import Image, image_loader
from loadstone.toolkit import HTTP_LOAD_OPTIONS, wait_done

from ._decode import decode
from ._fetch import fetch, parse_image_id
from .config import Settings, config

__all__ = ["SCHEMES", "LOAD_OPTIONS", "load_web", "load_web_image", "settings_for"]

SCHEMES = ("http", "https", "web")

# Load options that override a configuration setting for one load.
_OVERRIDES = ("formats", "max_pixels", "max_bytes")


def settings_for(options: Mapping[str, Any]) -> Settings:
    """The configuration snapshot with this load's ``formats``/``max_pixels``/``max_bytes`` applied.

    The options are checked as the settings are (``ValueError``/``TypeError``).
    """
    settings = config.get()
    if not options:
        return settings
    changes = {name: options[name] for name in _OVERRIDES if options.get(name) is not None}
    return replace(settings, **changes) if changes else settings


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _DecodeSlots:
    """At most ``size`` decodes at once across all loads (Pillow's decoders release the GIL: one per CPU).

    Fetches stay as concurrent as the request pool allows; decoding more
    images at once than there are CPUs only adds GIL and cache contention.
    Turns are first come, first served.  A load waiting for its turn waits
    on a future of its own (:func:`loadstone.toolkit.wait_done`), so its
    cancel or deadline ends the wait at once; a freed slot goes straight to
    the next waiter.  A new ``size`` applies from the next turn on.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._size = 1
        self._busy = 0
        self._waiters: collections.deque[concurrent.futures.Future[None]] = collections.deque()

    @contextlib.contextmanager
    def slot(self, size: int) -> Iterator[None]:
        self._acquire(size)
        try:
            yield
        finally:
            self._release()

    def _acquire(self, size: int) -> None:
        with self._lock:
            self._size = size
            self._hand_out()
            if self._busy < size and not self._waiters:
                self._busy += 1
                return
            turn: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._waiters.append(turn)
        try:
            wait_done(turn)  # raises this load's cancel or timeout
        except BaseException:
            with self._lock:
                handed = turn.done()
                if not handed:
                    self._waiters.remove(turn)
            if handed:  # the slot came a moment ago: pass it on
                self._release()
            raise

    def _release(self) -> None:
        with self._lock:
            self._busy -= 1
            self._hand_out()

    def _hand_out(self) -> None:
        """Give free slots to the longest waiting (lock held)."""
        while self._waiters and self._busy < self._size:
            self._busy += 1
            self._waiters.popleft().set_result(None)


_decode_slots = _DecodeSlots()


def load_web_image(image_id: str, options: Mapping[str, Any]) -> Image:
    """Fetch and decode one image (the plain function behind :data:`load_web`).

    Options (all optional): ``headers`` (added to the request), ``before_send``
    (hook that may edit the request, e.g. add a token), ``timeout`` (seconds,
    whole load), ``retries``, and per-load ``formats``, ``max_pixels`` and
    ``max_bytes`` overriding :data:`loadstone_web.config`.
    """
    try:
        settings = settings_for(options)
    except (TypeError, ValueError) as exc:
        raise loadstone.ImageLoadError(f"bad load option: {exc}", image_id=image_id) from exc
    source = parse_image_id(image_id)
    fetched = fetch(image_id, source, settings, options)
    context = loadstone.current_load()
    if context is not None:
        context.check()  # cancelled while the body arrived: do not decode
    with _decode_slots.slot(settings.decode_concurrency or cpu_count()):
        if context is not None:
            context.check()
        image = decode(image_id, fetched.content, settings, content_type=fetched.content_type)
    image.extra["url"] = fetched.url
    image.extra["fetch_time_ms"] = fetched.elapsed_ms
    return image


#: The load options the loader reads beyond loadstone's own: HTTP's, and the per-load overrides.
LOAD_OPTIONS = HTTP_LOAD_OPTIONS | frozenset(_OVERRIDES)

#: The ImageLoader registered for ``http``, ``https`` and ``web`` (another option is refused as a typo).
load_web = image_loader(load_web_image, options=LOAD_OPTIONS)
