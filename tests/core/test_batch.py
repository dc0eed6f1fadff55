"""The batch hook: ``@loader.batch`` functions load the ids that ``load_images`` groups for them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

import loadstone
from loadstone import (
    Image,
    ImageLoadError,
    LoadCancelledError,
    PluginError,
    TransportError,
)


def small(image_id: str) -> Image:
    return Image.from_array(image_id, np.full((2, 3), len(image_id), dtype=np.uint8))


class Batched:
    """A function loader with a batch function that records the groups it is given."""

    def __init__(self, deliver: Callable[[Sequence[str]], Iterator[Any]] | None = None) -> None:
        self.singles: list[str] = []
        self.groups: list[list[str]] = []
        self.contexts: list[loadstone.LoadContext | None] = []
        self.deliver = deliver or (lambda ids: (small(image_id) for image_id in ids))
        self.loader = loadstone.image_loader(self.single)
        self.loader.batch(self.many)

    def single(self, image_id: str, options: Mapping[str, Any]) -> Image:
        self.singles.append(image_id)
        return small(image_id)

    def many(self, image_ids: Sequence[str], options: Mapping[str, Any]) -> Iterator[Any]:
        self.groups.append(list(image_ids))
        self.contexts.append(loadstone.current_load())
        return self.deliver(image_ids)


def errors_after_the_first(scheme: str, expected: type[BaseException]) -> list[BaseException]:
    """4 ids of ``scheme`` loaded in bulk: the first loads, the others fail with ``expected``, each named."""
    ids = [f"{scheme}:{index}" for index in range(4)]
    loads = loadstone.load_images(ids)
    assert loads[0].result(10).image_id == ids[0]
    errors = []
    for image_id, load in zip(ids[1:], loads[1:], strict=True):
        error = load.exception(10)
        assert isinstance(error, expected), error
        assert error.image_id == image_id
        errors.append(error)
    return errors


def test_load_images_hands_groups_to_the_batch_function(loadstone_scheme: Callable[..., str]) -> None:
    batched = Batched()
    scheme = loadstone_scheme(batched.loader)
    ids = [f"{scheme}:{index}" for index in range(40)]
    loads = loadstone.load_images(ids)
    images = [load.result(10) for load in loads]
    assert [image.image_id for image in images] == ids
    assert sorted(image_id for group in batched.groups for image_id in group) == sorted(ids)
    assert max(len(group) for group in batched.groups) <= 16  # groups sized for the worker threads
    assert len(batched.groups) >= 3
    assert batched.singles == []
    # One id alone is an ordinary load.
    assert loadstone.load_images([f"{scheme}:alone"])[0].result(10).image_id == f"{scheme}:alone"
    assert batched.singles == [f"{scheme}:alone"]


def test_each_id_keeps_its_own_load_cache_entry_and_cancel(loadstone_scheme: Callable[..., str],
                                                          gate: threading.Event) -> None:
    def deliver(ids: Sequence[str]) -> Iterator[Image]:
        assert gate.wait(10)
        for image_id in ids:
            yield small(image_id)

    batched = Batched(deliver)
    scheme = loadstone_scheme(batched.loader)
    ids = [f"{scheme}:a", f"{scheme}:b", f"{scheme}:c"]
    loads = loadstone.load_images(ids)
    assert len({id(load) for load in loads}) == 3
    assert [loadstone.cache.get_image_load_object(image_id) for image_id in ids] == loads
    assert loadstone.cancel_load_image(f"{scheme}:b")
    gate.set()
    assert loads[0].result(10).image_id == ids[0]
    assert loads[2].result(10).image_id == ids[2]
    with pytest.raises(LoadCancelledError):
        loads[1].result(10)
    assert loadstone.cache.get_image_load_object(ids[1]) is None
    assert ids[0] in loadstone.cache and ids[2] in loadstone.cache


def test_a_batch_whose_loads_were_all_cancelled_stops(loadstone_scheme: Callable[..., str]) -> None:
    stopped = threading.Event()

    def deliver(ids: Sequence[str]) -> Iterator[Image]:
        context = loadstone.current_load()
        assert context is not None
        if context.wait(10):  # woken by the cancel of the last load still wanted
            stopped.set()
        return iter(())

    scheme = loadstone_scheme(Batched(deliver).loader)
    loads = loadstone.load_images([f"{scheme}:{index}" for index in range(3)])
    started = time.monotonic()
    for load in loads[:2]:
        load.cancel()
    assert not stopped.wait(0.2)  # one load is still wanted
    loads[2].cancel()
    assert stopped.wait(5)
    assert time.monotonic() - started < 5
    for load in loads:
        with pytest.raises(LoadCancelledError):
            load.result(5)


def test_a_batch_function_that_raises_fails_the_rest_with_typed_errors(
        loadstone_scheme: Callable[..., str]) -> None:
    def deliver(ids: Sequence[str]) -> Iterator[Image]:
        yield small(ids[0])
        raise KeyError("the server's listing had no such instance")

    for error in errors_after_the_first(loadstone_scheme(Batched(deliver).loader), ImageLoadError):
        assert isinstance(error.__cause__, KeyError)


def test_a_typed_batch_error_names_each_load_s_own_id(loadstone_scheme: Callable[..., str]) -> None:
    def deliver(ids: Sequence[str]) -> Iterator[Image]:
        raise TransportError("HTTP 503 from the server", status=503)
        yield  # a generator

    scheme = loadstone_scheme(Batched(deliver).loader)
    ids = [f"{scheme}:{index}" for index in range(3)]
    errors = [load.exception(10) for load in loadstone.load_images(ids)]
    for image_id, error in zip(ids, errors, strict=True):
        assert isinstance(error, TransportError) and error.status == 503
        assert error.image_id == image_id
    assert len({id(error) for error in errors}) == 3  # one error object per load


def test_a_yielded_error_fails_its_own_load(loadstone_scheme: Callable[..., str]) -> None:
    def deliver(ids: Sequence[str]) -> Iterator[Any]:
        context = loadstone.current_load()
        assert context is not None
        for image_id in ids:
            if image_id.endswith(":1"):
                yield loadstone.InvalidImageError("truncated frame")
            elif image_id.endswith(":2"):  # made as loadstone.http makes them: naming the running context
                yield loadstone.TransportError("HTTP 404", status=404, image_id=context.image_id)
            else:
                yield small(image_id)

    scheme = loadstone_scheme(Batched(deliver).loader)
    ids = [f"{scheme}:{index}" for index in range(4)]
    loads = loadstone.load_images(ids)
    assert loads[0].result(10).image_id == ids[0] and loads[3].result(10).image_id == ids[3]
    error = loads[1].exception(10)
    assert isinstance(error, loadstone.InvalidImageError) and error.image_id == ids[1]
    error = loads[2].exception(10)
    assert isinstance(error, loadstone.TransportError) and error.image_id == ids[2]


def test_a_batch_that_gives_too_few_results_fails_the_rest(loadstone_scheme: Callable[..., str]) -> None:
    scheme = loadstone_scheme(Batched(lambda ids: iter([small(ids[0])])).loader)
    for error in errors_after_the_first(scheme, PluginError):
        assert "no result" in str(error)
