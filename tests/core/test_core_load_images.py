"""load_images: bulk loads through the pool, PREFETCH by default, one result per id."""

from __future__ import annotations

import threading

import pytest

import loadstone
from loadstone import ImageLoadObject, InvalidImageIdError, UnknownSchemeError


@pytest.fixture
def blocked_scheme(register, gates, make_image):
    """Threaded loader that waits for ``gate``; records (image_id, options)."""
    gate = gates()
    calls: list[tuple[str, dict]] = []
    lock = threading.Lock()
    condition = threading.Condition(lock)

    @loadstone.image_loader
    def load(image_id, options):
        with condition:
            calls.append((image_id, dict(options)))
            condition.notify_all()
        assert gate.wait(30)
        return make_image(image_id)

    return register(load), gate, calls, condition


def test_one_load_object_per_id_in_order_cached_and_prefetch(blocked_scheme) -> None:
    scheme, gate, calls, condition = blocked_scheme
    ids = [f"{scheme}:{i}" for i in range(5)]
    load_objects = loadstone.load_images(ids)
    assert len(load_objects) == 5
    assert all(isinstance(obj, ImageLoadObject) for obj in load_objects)
    with condition:
        assert condition.wait_for(lambda: len(calls) == 5, timeout=10)
    stats = loadstone.pool.stats()
    assert stats["prefetch"]["running"] == 5
    assert stats["interaction"]["running"] == 0
    cached = [loadstone.cache.get_image_load_object(image_id) for image_id in ids]
    assert all(a is b for a, b in zip(cached, load_objects, strict=True))
    gate.set()
    images = [obj.result(timeout=10) for obj in load_objects]
    assert [image.image_id for image in images] == ids
    assert sorted(call[0] for call in calls) == ids
    assert all(request_type_of(call[1]) == loadstone.RequestType.PREFETCH for call in calls)
    # Cached: a second bulk call returns the same objects without calling the loader.
    again = loadstone.load_images(ids)
    assert all(a is b for a, b in zip(again, load_objects, strict=True))
    assert len(calls) == 5


def request_type_of(options: dict) -> loadstone.RequestType:
    return loadstone.RequestType.parse(options["request_type"])


def test_request_type_can_be_overridden(blocked_scheme) -> None:
    scheme, gate, calls, condition = blocked_scheme
    load_objects = loadstone.load_images([f"{scheme}:a", f"{scheme}:b"], request_type="compute", priority=2)
    with condition:
        assert condition.wait_for(lambda: len(calls) == 2, timeout=10)
    assert loadstone.pool.stats()["compute"]["running"] == 2
    assert all(call[1]["priority"] == 2 for call in calls)
    gate.set()
    for obj in load_objects:
        obj.result(timeout=10)


def test_prefetch_waits_behind_interaction(single_slot, register, gates, make_image) -> None:
    gate = gates()
    entered = threading.Event()
    order: list[str] = []

    @loadstone.image_loader
    def load(image_id, options):
        if image_id.endswith(":hold"):
            entered.set()
            assert gate.wait(30)
        order.append(image_id.split(":", 1)[1])
        return make_image(image_id)

    scheme = register(load)
    held = loadstone.load_image(f"{scheme}:hold")
    assert entered.wait(10)
    bulk = loadstone.load_images([f"{scheme}:bulk0", f"{scheme}:bulk1"])
    urgent = loadstone.load_image(f"{scheme}:urgent")
    gate.set()
    for obj in [held, *bulk, urgent]:
        obj.result(timeout=10)
    assert order == ["hold", "urgent", "bulk0", "bulk1"]


def test_bad_ids_give_failed_load_objects_without_stopping_the_others(no_plugins, register,
                                                                     make_image) -> None:
    scheme = register(lambda image_id, options: ImageLoadObject.from_image(make_image(image_id)))
    ids = [f"{scheme}:0", "noscheme", 123, "unknownscheme:1", None, f"{scheme}:1", "wadors:x"]
    load_objects = loadstone.load_images(ids)
    assert len(load_objects) == len(ids)
    assert load_objects[0].result(timeout=5).image_id == f"{scheme}:0"
    assert load_objects[5].result(timeout=5).image_id == f"{scheme}:1"
    for index, expected in [(1, InvalidImageIdError), (2, InvalidImageIdError), (3, UnknownSchemeError),
                            (4, InvalidImageIdError), (6, UnknownSchemeError)]:
        obj = load_objects[index]
        assert obj.done()
        with pytest.raises(expected):
            obj.result(timeout=1)
    assert load_objects[6].exception(timeout=1).suggestion == "loadstone-wado"
    assert sorted(loadstone.cache.keys()) == [f"{scheme}:0", f"{scheme}:1"]


def test_a_failing_load_does_not_stop_the_others(register, make_image) -> None:
    def loader(image_id, options):
        if image_id.endswith(":bad"):
            raise RuntimeError("broken file")
        return ImageLoadObject.from_image(make_image(image_id))

    scheme = register(loader)
    results = loadstone.load_images([f"{scheme}:a", f"{scheme}:bad", f"{scheme}:c"])
    assert results[0].result(timeout=5).image_id == f"{scheme}:a"
    with pytest.raises(loadstone.ImageLoadError):
        results[1].result(timeout=5)
    assert results[2].result(timeout=5).image_id == f"{scheme}:c"


def test_a_single_string_is_rejected() -> None:
    with pytest.raises(TypeError):
        loadstone.load_images("example://ct/1")


def test_invalid_shared_options_are_rejected_at_once(register, make_image) -> None:
    calls: list[str] = []

    def loader(image_id, options):
        calls.append(image_id)
        return ImageLoadObject.from_image(make_image(image_id))

    scheme = register(loader)
    with pytest.raises(ValueError):
        loadstone.load_images([f"{scheme}:1"], request_type="sometime")
    assert calls == []


def test_empty_list() -> None:
    assert loadstone.load_images([]) == []
    assert loadstone.load_images(iter(())) == []
