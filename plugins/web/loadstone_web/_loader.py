"""The image loader of the ``http``, ``https`` and ``web`` schemes."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import loadstone
from loadstone import Image, image_loader

from ._config import Settings, config, normalize_formats
from ._decode import decode
from ._fetch import fetch, parse_image_id

__all__ = ["SCHEMES", "load_web", "load_web_image", "settings_for"]

SCHEMES = ("http", "https", "web")

# Load options that override a configuration setting for one load.
_OVERRIDES = ("formats", "max_pixels", "max_bytes")


def settings_for(options: Mapping[str, Any]) -> Settings:
    """The configuration snapshot with this load's ``formats``/``max_pixels``/``max_bytes`` applied."""
    settings = config.snapshot()
    changes: dict[str, Any] = {}
    for name in _OVERRIDES:
        value = options.get(name) if options else None
        if value is None:
            continue
        if name == "formats":
            changes[name] = normalize_formats(value)
        elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"the {name} option must be a positive int, got {value!r}")
        else:
            changes[name] = value
    return replace(settings, **changes) if changes else settings


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class _DecodeSlots:
    """Bounds how many decodes run at once (Pillow's decoders release the GIL: one per CPU).

    Fetches stay as concurrent as the request pool allows; decoding more
    images at once than there are CPUs only adds GIL and cache contention.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._size = 0
        self._semaphore = threading.Semaphore(1)

    def semaphore(self, size: int) -> threading.Semaphore:
        with self._lock:
            if size != self._size:  # resized: loads holding the old one finish with it
                self._semaphore = threading.Semaphore(size)
                self._size = size
            return self._semaphore

    @contextlib.contextmanager
    def slot(self, size: int) -> Iterator[None]:
        semaphore = self.semaphore(size)
        context = loadstone.current_load()
        while not semaphore.acquire(timeout=0.05):
            if context is not None:
                context.check()  # cancelled or timed out while waiting: give up the turn
        try:
            yield
        finally:
            semaphore.release()


_decode_slots = _DecodeSlots()


def load_web_image(image_id: str, options: Mapping[str, Any]) -> Image:
    """Fetch and decode one image (the plain function; :data:`load_web` runs it off-thread).

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


#: The ImageLoader registered for ``http``, ``https`` and ``web``.
load_web = image_loader(load_web_image)
