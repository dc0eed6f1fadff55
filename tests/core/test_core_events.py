"""The event bus and the load events."""

from __future__ import annotations

import logging
import threading

import pytest

import loadstone
from loadstone import ImageLoadObject

EVENTS = loadstone.events


def test_subscribe_and_unsubscribe() -> None:
    seen: list[tuple[str, dict]] = []
    unsubscribe = EVENTS.subscribe("CUSTOM_EVENT", lambda name, detail: seen.append((name, detail)))
    assert EVENTS.has_subscribers("CUSTOM_EVENT")
    EVENTS.trigger("CUSTOM_EVENT", {"n": 1})
    unsubscribe()
    EVENTS.trigger("CUSTOM_EVENT", {"n": 2})
    assert seen == [("CUSTOM_EVENT", {"n": 1})]
    assert not EVENTS.has_subscribers("CUSTOM_EVENT")
    unsubscribe()  # twice is harmless


def test_each_subscriber_is_called_in_order_and_unsubscribed_separately() -> None:
    seen: list[str] = []
    first = EVENTS.subscribe("E2", lambda name, detail: seen.append("first"))
    EVENTS.subscribe("E2", lambda name, detail: seen.append("second"))
    EVENTS.trigger("E2", {})
    first()
    EVENTS.trigger("E2", {})
    assert seen == ["first", "second", "second"]


def test_subscribe_needs_a_callable() -> None:
    with pytest.raises(TypeError):
        EVENTS.subscribe("E3", "nope")


def test_event_names_are_cornerstones() -> None:
    assert EVENTS.IMAGE_LOADED == "IMAGE_LOADED"
    assert EVENTS.IMAGE_LOAD_FAILED == "IMAGE_LOAD_FAILED"
    assert EVENTS.IMAGE_CACHE_IMAGE_ADDED == "IMAGE_CACHE_IMAGE_ADDED"
    assert EVENTS.IMAGE_CACHE_IMAGE_REMOVED == "IMAGE_CACHE_IMAGE_REMOVED"
    assert EVENTS.IMAGE_CACHE_FULL == "IMAGE_CACHE_FULL"
    assert EVENTS.IMAGE_LOAD_PROGRESS == "IMAGE_LOAD_PROGRESS"


def test_image_loaded_event(register, make_image) -> None:
    details: list[dict] = []
    fired = threading.Event()

    def on_loaded(name, detail):
        details.append(detail)
        fired.set()

    EVENTS.subscribe(EVENTS.IMAGE_LOADED, on_loaded)

    @loadstone.image_loader
    def load(image_id, options):
        return make_image(image_id)

    scheme = register(load)
    image = loadstone.load_and_cache_image(f"{scheme}:1").result(timeout=10)
    assert fired.wait(10)
    assert details == [{"image_id": f"{scheme}:1", "image": image}]


def test_image_load_failed_event(register) -> None:
    details: list[dict] = []
    fired = threading.Event()

    def on_failed(name, detail):
        details.append(detail)
        fired.set()

    EVENTS.subscribe(EVENTS.IMAGE_LOAD_FAILED, on_failed)

    @loadstone.image_loader
    def load(image_id, options):
        raise ValueError("bad pixels")

    scheme = register(load)
    load_object = loadstone.load_image(f"{scheme}:1")
    with pytest.raises(loadstone.ImageLoadError) as caught:
        load_object.result(timeout=10)
    assert fired.wait(10)
    assert len(details) == 1
    assert details[0]["image_id"] == f"{scheme}:1"
    assert details[0]["error"] is caught.value


def test_a_cancelled_load_is_reported_as_failed(register, gates, make_image) -> None:
    gate = gates()
    details: list[dict] = []
    EVENTS.subscribe(EVENTS.IMAGE_LOAD_FAILED, lambda name, detail: details.append(detail))

    @loadstone.image_loader
    def load(image_id, options):
        gate.wait(30)
        return make_image(image_id)

    scheme = register(load)
    load_object = loadstone.load_image(f"{scheme}:1")
    load_object.cancel()  # the failure event fires on this thread, during cancel()
    assert len(details) == 1
    assert isinstance(details[0]["error"], loadstone.LoadCancelledError)


def test_a_raising_callback_is_logged_and_does_not_break_the_load(register, make_image, caplog) -> None:
    later = threading.Event()

    def broken(name, detail):
        raise RuntimeError("subscriber bug")

    EVENTS.subscribe(EVENTS.IMAGE_LOADED, broken)
    EVENTS.subscribe(EVENTS.IMAGE_LOADED, lambda name, detail: later.set())
    EVENTS.subscribe(EVENTS.IMAGE_CACHE_IMAGE_ADDED, broken)
    scheme = register(lambda image_id, options: ImageLoadObject.from_image(make_image(image_id)))
    with caplog.at_level(logging.ERROR, logger="loadstone.events"):
        image = loadstone.load_and_cache_image(f"{scheme}:1").result(timeout=10)
        assert later.wait(10)  # the next subscriber still ran
    assert image.image_id == f"{scheme}:1"
    assert loadstone.cache.get_cache_info().number_of_images_cached == 1
    logged = [record for record in caplog.records if record.name == "loadstone.events"]
    assert len(logged) == 2
    assert all(record.exc_info and isinstance(record.exc_info[1], RuntimeError) for record in logged)
    assert {EVENTS.IMAGE_LOADED, EVENTS.IMAGE_CACHE_IMAGE_ADDED} <= {
        word for record in logged for word in record.getMessage().split()
    }


def test_events_clear_removes_every_subscriber() -> None:
    EVENTS.subscribe("E4", lambda name, detail: None)
    EVENTS.clear()
    assert not EVENTS.has_subscribers("E4")
