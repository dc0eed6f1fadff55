"""The image cache: shared pending loads, LRU by bytes, decache, events, failures."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import loadstone
from loadstone import CacheInfo, ImageLoadError, ImageLoadObject, LoadCancelledError

EVENTS = loadstone.events


@pytest.fixture
def sized_scheme(register, make_image):
    """Raw loader giving finished images of ``nbytes`` from ids ``scheme:NAME/NBYTES``.

    Records loader calls and decache calls per image id.
    """
    calls: list[str] = []
    decached: list[str] = []

    def loader(image_id, options):
        calls.append(image_id)
        nbytes = int(image_id.rsplit("/", 1)[1])
        load_object = ImageLoadObject.from_image(make_image(image_id, nbytes=nbytes))
        load_object.decache = lambda: decached.append(image_id)
        return load_object

    scheme = register(loader)
    return scheme, calls, decached


@pytest.fixture
def recorded_events():
    """Every cache event, in order, as (name, image_id)."""
    seen: list[tuple[str, str]] = []
    for name in (EVENTS.IMAGE_CACHE_IMAGE_ADDED, EVENTS.IMAGE_CACHE_IMAGE_REMOVED, EVENTS.IMAGE_CACHE_FULL):
        EVENTS.subscribe(name, lambda event, detail: seen.append((event, detail["image_id"])))
    return seen


def test_one_thousand_concurrent_requests_share_one_load(register, gates, make_image, settled) -> None:
    gate = gates()
    calls: list[str] = []
    calls_lock = threading.Lock()

    @loadstone.image_loader
    def load(image_id, options):
        with calls_lock:
            calls.append(image_id)
        assert gate.wait(30)
        return make_image(image_id)

    scheme = register(load)
    image_id = f"{scheme}:shared"
    threads_count, per_thread = 8, 125
    barrier = threading.Barrier(threads_count)
    results: list[list[ImageLoadObject]] = [[] for _ in range(threads_count)]
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait(10)
            for _ in range(per_thread):
                results[index].append(loadstone.load_and_cache_image(image_id))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    load_objects = [obj for chunk in results for obj in chunk]
    assert len(load_objects) == 1000
    first = load_objects[0]
    assert all(obj is first for obj in load_objects)
    assert not first.done()  # every request arrived while the single load was pending
    gate.set()
    image = first.result(timeout=10)
    settled(first)
    assert calls == [image_id]
    assert all(obj.result(timeout=1) is image for obj in load_objects)
    assert loadstone.cache.get_cache_info().number_of_images_cached == 1


def test_lru_eviction_by_bytes(sized_scheme, recorded_events) -> None:
    scheme, calls, decached = sized_scheme
    cache = loadstone.cache
    cache.set_maximum_size_bytes(300)
    a, b, c, d = (f"{scheme}:{name}/100" for name in "abcd")
    for image_id in (a, b, c):
        loadstone.load_and_cache_image(image_id).result(timeout=5)
    assert cache.get_cache_info() == CacheInfo(300, 300, 3)
    assert cache.keys() == [a, b, c]
    # Touch a: b becomes the least recently used.
    assert cache.get_image_load_object(a) is not None
    assert cache.keys() == [b, c, a]
    loadstone.load_and_cache_image(d).result(timeout=5)
    assert cache.keys() == [c, a, d]
    assert cache.get_cache_info() == CacheInfo(300, 300, 3)
    assert decached == [b]
    assert (EVENTS.IMAGE_CACHE_IMAGE_REMOVED, b) in recorded_events
    assert b not in cache
    # A load of b now calls the loader again.
    loadstone.load_and_cache_image(b).result(timeout=5)
    assert calls == [a, b, c, d, b]
    assert cache.keys() == [a, d, b]
    assert decached == [b, c]


def test_eviction_frees_as_many_bytes_as_needed(sized_scheme) -> None:
    scheme, _, decached = sized_scheme
    cache = loadstone.cache
    cache.set_maximum_size_bytes(1000)
    ids = [f"{scheme}:{i}/200" for i in range(5)]
    for image_id in ids:
        loadstone.load_and_cache_image(image_id).result(timeout=5)
    assert cache.get_cache_info() == CacheInfo(1000, 1000, 5)
    big = f"{scheme}:big/550"
    loadstone.load_and_cache_image(big).result(timeout=5)
    # 550 more bytes need three 200-byte images gone (1000 - 600 + 550 = 950).
    assert decached == ids[:3]
    assert cache.keys() == [*ids[3:], big]
    assert cache.get_cache_info() == CacheInfo(1000, 950, 3)


def test_shrinking_the_maximum_evicts_least_recently_used(sized_scheme, recorded_events) -> None:
    scheme, _, decached = sized_scheme
    cache = loadstone.cache
    ids = [f"{scheme}:{i}/64" for i in range(4)]
    for image_id in ids:
        loadstone.load_and_cache_image(image_id).result(timeout=5)
    loadstone.load_image(ids[0])  # a cache hit through load_image also counts as a use
    assert cache.keys() == [*ids[1:], ids[0]]
    cache.set_maximum_size_bytes(130)
    assert decached == [ids[1], ids[2]]
    assert cache.keys() == [ids[3], ids[0]]
    assert cache.get_cache_info() == CacheInfo(130, 128, 2)
    removed = [image_id for name, image_id in recorded_events if name == EVENTS.IMAGE_CACHE_IMAGE_REMOVED]
    assert removed == [ids[1], ids[2]]
    assert cache.get_maximum_size_bytes() == 130
    with pytest.raises(ValueError):
        cache.set_maximum_size_bytes(-1)


def test_cache_info_numbers_are_exact(register, gates, make_image, sized_scheme, settled) -> None:
    scheme, _, _ = sized_scheme
    cache = loadstone.cache
    assert cache.get_cache_info() == CacheInfo(1 << 30, 0, 0)
    loadstone.load_and_cache_image(f"{scheme}:a/7").result(timeout=5)
    loadstone.load_and_cache_image(f"{scheme}:b/1000").result(timeout=5)
    rgb = loadstone.Image.from_array("rgb:1", np.zeros((4, 5, 3), np.uint16))
    assert rgb.size_in_bytes == 120
    rgb_scheme = register(lambda image_id, options: ImageLoadObject.from_image(rgb))
    loadstone.load_and_cache_image(f"{rgb_scheme}:1").result(timeout=5)
    assert cache.get_cache_info() == CacheInfo(1 << 30, 1127, 3)
    # A pending load is in the cache but counts no bytes and no image yet.
    gate = gates()

    @loadstone.image_loader
    def slow(image_id, options):
        assert gate.wait(30)
        return make_image(image_id, nbytes=13)

    slow_scheme = register(slow)
    pending = loadstone.load_and_cache_image(f"{slow_scheme}:1")
    assert f"{slow_scheme}:1" in cache
    assert len(cache) == 4
    assert cache.get_cache_info() == CacheInfo(1 << 30, 1127, 3)
    gate.set()
    pending.result(timeout=10)
    settled(pending)
    assert cache.get_cache_info() == CacheInfo(1 << 30, 1140, 4)
    assert cache.remove_image_load_object(f"{scheme}:b/1000") is True
    assert cache.remove_image_load_object(f"{scheme}:b/1000") is False
    assert cache.get_cache_info() == CacheInfo(1 << 30, 140, 3)
    assert cache.purge() == 3
    assert cache.get_cache_info() == CacheInfo(1 << 30, 0, 0)
    assert len(cache) == 0


def test_decache_and_removed_event_on_remove_and_purge(sized_scheme, recorded_events) -> None:
    scheme, _, decached = sized_scheme
    ids = [f"{scheme}:{i}/10" for i in range(3)]
    for image_id in ids:
        loadstone.load_and_cache_image(image_id).result(timeout=5)
    loadstone.cache.remove_image_load_object(ids[1])
    assert decached == [ids[1]]
    loadstone.cache.purge()
    assert sorted(decached) == sorted(ids)
    removed = [image_id for name, image_id in recorded_events if name == EVENTS.IMAGE_CACHE_IMAGE_REMOVED]
    assert removed[0] == ids[1]
    assert sorted(removed) == sorted(ids)
    assert len(loadstone.cache) == 0


def test_a_failing_decache_does_not_break_the_cache(register, make_image, caplog) -> None:
    def loader(image_id, options):
        load_object = ImageLoadObject.from_image(make_image(image_id, nbytes=10))

        def decache():
            raise RuntimeError("decache bug")

        load_object.decache = decache
        return load_object

    scheme = register(loader)
    loadstone.load_and_cache_image(f"{scheme}:1").result(timeout=5)
    assert loadstone.cache.remove_image_load_object(f"{scheme}:1") is True
    assert f"{scheme}:1" not in loadstone.cache
    assert loadstone.cache.get_cache_info().cache_size_bytes == 0
    assert any("decache" in record.getMessage() for record in caplog.records)


def test_added_event_details(sized_scheme) -> None:
    scheme, _, _ = sized_scheme
    details: list[dict] = []
    EVENTS.subscribe(EVENTS.IMAGE_CACHE_IMAGE_ADDED, lambda name, detail: details.append(detail))
    image = loadstone.load_and_cache_image(f"{scheme}:a/42").result(timeout=5)
    assert details == [{"image_id": f"{scheme}:a/42", "size_in_bytes": 42, "image": image}]
    loadstone.load_image(f"{scheme}:b/42").result(timeout=5)  # not cached: no event
    assert len(details) == 1


def test_an_image_bigger_than_the_cache_is_returned_but_not_cached(sized_scheme, recorded_events) -> None:
    scheme, _, decached = sized_scheme
    cache = loadstone.cache
    cache.set_maximum_size_bytes(100)
    small = f"{scheme}:small/60"
    loadstone.load_and_cache_image(small).result(timeout=5)
    full_details: list[dict] = []
    EVENTS.subscribe(EVENTS.IMAGE_CACHE_FULL, lambda name, detail: full_details.append(detail))
    big = f"{scheme}:big/101"
    image = loadstone.load_and_cache_image(big).result(timeout=5)
    assert image.size_in_bytes == 101
    assert big not in cache
    assert small in cache  # nothing was evicted for an image that can never fit
    assert decached == []
    assert cache.get_cache_info() == CacheInfo(100, 60, 1)
    assert (EVENTS.IMAGE_CACHE_FULL, big) in recorded_events
    assert (EVENTS.IMAGE_CACHE_IMAGE_ADDED, big) not in recorded_events
    assert full_details == [{"image_id": big, "size_in_bytes": 101, "maximum_size_bytes": 100,
                             "cache_size_bytes": 60}]


def test_a_failed_load_leaves_no_entry_and_a_retry_is_cached(register, make_image) -> None:
    calls: list[str] = []

    def flaky(image_id, options):
        calls.append(image_id)
        if len(calls) == 1:
            failed = ImageLoadObject(image_id=image_id)
            failed.promise.set_exception(loadstone.TransportError("503", image_id=image_id, status=503))
            return failed
        return ImageLoadObject.from_image(make_image(image_id, nbytes=20))

    scheme = register(flaky)
    image_id = f"{scheme}:1"
    first = loadstone.load_and_cache_image(image_id)
    with pytest.raises(loadstone.TransportError) as caught:
        first.result(timeout=5)
    assert caught.value.status == 503
    assert image_id not in loadstone.cache
    assert loadstone.cache.get_cache_info().number_of_images_cached == 0
    second = loadstone.load_and_cache_image(image_id)
    assert second is not first
    image = second.result(timeout=5)
    assert loadstone.cache.get_image_load_object(image_id) is second
    assert loadstone.load_and_cache_image(image_id).result(timeout=5) is image
    assert calls == [image_id, image_id]
    assert loadstone.cache.get_cache_info().cache_size_bytes == 20


def test_a_failed_threaded_load_leaves_no_entry(register, settled) -> None:
    @loadstone.image_loader
    def broken(image_id, options):
        raise OSError("disk gone")

    scheme = register(broken)
    load_object = loadstone.load_and_cache_image(f"{scheme}:1")
    with pytest.raises(ImageLoadError):
        load_object.result(timeout=10)
    settled(load_object)
    assert f"{scheme}:1" not in loadstone.cache


def test_a_cancelled_load_leaves_no_entry(register, gates, make_image) -> None:
    gate = gates()
    entered = threading.Event()

    @loadstone.image_loader
    def slow(image_id, options):
        entered.set()
        gate.wait(30)
        return make_image(image_id)

    scheme = register(slow)
    load_object = loadstone.load_and_cache_image(f"{scheme}:1")
    assert entered.wait(10)
    assert f"{scheme}:1" in loadstone.cache
    assert load_object.cancel() is True
    with pytest.raises(LoadCancelledError):
        load_object.result(timeout=5)
    assert f"{scheme}:1" not in loadstone.cache
    assert len(loadstone.cache) == 0


def test_load_image_uses_the_cache_but_does_not_store(sized_scheme) -> None:
    scheme, calls, _ = sized_scheme
    cached_id, other_id = f"{scheme}:c/10", f"{scheme}:o/10"
    cached = loadstone.load_and_cache_image(cached_id)
    assert loadstone.load_image(cached_id) is cached
    assert calls == [cached_id]
    uncached = loadstone.load_image(other_id)
    uncached.result(timeout=5)
    assert other_id not in loadstone.cache
    assert loadstone.cache.get_cache_info().number_of_images_cached == 1
    assert loadstone.load_image(other_id) is not uncached
    assert calls == [cached_id, other_id, other_id]


def test_ignore_cache_starts_a_new_load(sized_scheme) -> None:
    scheme, calls, decached = sized_scheme
    image_id = f"{scheme}:x/10"
    first = loadstone.load_and_cache_image(image_id).result(timeout=5)
    again = loadstone.load_and_cache_image(image_id, ignore_cache=True).result(timeout=5)
    assert again is not first
    assert calls == [image_id, image_id]
    assert decached == [image_id]  # the old entry was replaced
    assert loadstone.cache.get_image_load_object(image_id).result(timeout=1) is again
    assert loadstone.cache.get_cache_info().number_of_images_cached == 1
    fresh = loadstone.load_image(image_id, ignore_cache=True).result(timeout=5)
    assert fresh is not again
    assert loadstone.cache.get_image_load_object(image_id).result(timeout=1) is again


def test_purged_pending_load_is_not_cached_when_it_finishes(register, gates, make_image, settled) -> None:
    gate = gates()

    @loadstone.image_loader
    def slow(image_id, options):
        gate.wait(30)
        return make_image(image_id)

    scheme = register(slow)
    load_object = loadstone.load_and_cache_image(f"{scheme}:1")
    assert loadstone.cache.purge() == 1
    gate.set()
    load_object.result(timeout=10)
    settled(load_object)
    assert f"{scheme}:1" not in loadstone.cache
    assert loadstone.cache.get_cache_info() == CacheInfo(1 << 30, 0, 0)


def test_pending_loads_are_not_evicted(register, gates, make_image, sized_scheme, settled) -> None:
    scheme, _, _ = sized_scheme
    gate = gates()

    @loadstone.image_loader
    def slow(image_id, options):
        gate.wait(30)
        return make_image(image_id, nbytes=10)

    slow_scheme = register(slow)
    loadstone.cache.set_maximum_size_bytes(100)
    pending = loadstone.load_and_cache_image(f"{slow_scheme}:p")
    for name in "abc":
        loadstone.load_and_cache_image(f"{scheme}:{name}/60").result(timeout=5)
    assert loadstone.cache.keys() == [f"{slow_scheme}:p", f"{scheme}:c/60"]
    gate.set()
    pending.result(timeout=10)
    settled(pending)
    assert loadstone.cache.get_cache_info() == CacheInfo(100, 70, 2)


def test_put_image_load_object_requires_a_load_object() -> None:
    with pytest.raises(TypeError):
        loadstone.cache.put_image_load_object("x:1", "not a load object")
