"""loadstone.toolkit.LRUCache: bounded by count or bytes, with eviction callbacks."""

from __future__ import annotations

import threading

import pytest

from loadstone.toolkit import LRUCache


def test_a_count_bounded_cache_evicts_the_least_recently_used() -> None:
    evicted: list[tuple[str, int]] = []
    cache: LRUCache[str, int] = LRUCache(3, on_evict=lambda key, value: evicted.append((key, value)))
    for number, key in enumerate("abc"):
        assert cache.put(key, number)
    assert cache.get("a") == 0  # now the most recently used
    assert cache.peek("b") == 1  # peek does not count as use
    cache.put("d", 3)
    assert evicted == [("b", 1)]
    assert cache.keys() == ["c", "a", "d"]
    assert (len(cache), cache.total) == (3, 3)
    assert "b" not in cache and cache.get("b", -1) == -1


def test_a_byte_bounded_cache_counts_sizes() -> None:
    evicted: list[str] = []
    cache: LRUCache[str, bytes] = LRUCache(10, size_of=len, on_evict=lambda key, value: evicted.append(key))
    cache.put("a", b"1234")
    cache.put("b", b"1234")
    assert cache.total == 8 and cache.size("a") == 4
    cache.put("c", b"123")  # 11 > 10: "a" goes
    assert evicted == ["a"] and cache.total == 7
    cache.put("d", b"x", size=3)  # an explicit size wins over size_of
    assert cache.size("d") == 3 and cache.total == 10
    assert cache.put("b", b"12") and cache.total == 8  # replacing counts the new size only
    assert evicted == ["a"]


def test_a_value_larger_than_the_maximum_is_not_stored() -> None:
    cache: LRUCache[str, bytes] = LRUCache(4, size_of=len)
    cache.put("k", b"12")
    assert not cache.put("k", b"12345")
    assert "k" not in cache and cache.total == 0  # the old value under the key is gone too


def test_can_evict_keeps_entries_that_free_nothing() -> None:
    evicted: list[str] = []
    cache: LRUCache[str, str] = LRUCache(2, can_evict=lambda key, value: value != "pending",
                                         on_evict=lambda key, value: evicted.append(key))
    cache.put("p", "pending")
    cache.put("a", "done")
    cache.put("b", "done")
    assert evicted == ["a"]
    assert cache.keys() == ["p", "b"]


def test_resize_evicts_others_or_drops_the_entry() -> None:
    evicted: list[str] = []
    cache: LRUCache[str, str] = LRUCache(10, on_evict=lambda key, value: evicted.append(key))
    for key in "abc":
        cache.put(key, key, size=3)
    assert cache.resize("a", 7)  # "a" grows: the least recently used others make room
    assert evicted == ["b"]
    assert cache.keys() == ["c", "a"] and cache.total == 10  # "a" is now the most recent
    assert cache.resize("c", 3) and evicted == ["b"]  # the same size: nothing to do
    assert not cache.resize("a", 11)  # no longer fits at all
    assert "a" not in cache and cache.total == 3
    assert evicted == ["b"]  # dropping the resized entry itself is not an eviction
    assert not cache.resize("missing", 1)


def test_pop_if_removes_only_the_same_value() -> None:
    cache: LRUCache[str, list[int]] = LRUCache(5)
    first, second = [1], [1]
    cache.put("k", first)
    assert not cache.pop_if("k", second)  # equal but not the same object
    assert cache.pop_if("k", first)
    assert not cache.pop_if("k", first)
    assert len(cache) == 0 and cache.total == 0


def test_a_smaller_maximum_evicts_and_a_bad_one_is_refused() -> None:
    evicted: list[str] = []
    cache: LRUCache[str, int] = LRUCache(5, on_evict=lambda key, value: evicted.append(key))
    for number, key in enumerate("abcde"):
        cache.put(key, number)
    cache.maximum = 2
    assert evicted == ["a", "b", "c"] and cache.keys() == ["d", "e"]
    assert cache.maximum == 2
    for bad in (-1, True, 1.5, "3"):
        with pytest.raises(ValueError):
            cache.maximum = bad  # type: ignore[assignment]
    with pytest.raises(ValueError):
        LRUCache(-1)
    assert cache.maximum == 2


def test_pop_and_clear_hand_back_values_without_on_evict() -> None:
    evicted: list[str] = []
    cache: LRUCache[str, int] = LRUCache(5, on_evict=lambda key, value: evicted.append(key))
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.pop("a") == 1 and cache.pop("a", -1) == -1
    assert cache.clear() == [("b", 2)]
    assert evicted == [] and len(cache) == 0 and cache.total == 0


def test_on_evict_runs_outside_the_lock() -> None:
    """An eviction callback may hand work to another thread that uses the cache."""
    seen: list[int] = []
    cache: LRUCache[str, int]

    def on_evict(key: str, value: int) -> None:
        reader = threading.Thread(target=lambda: seen.append(len(cache.items())))
        reader.start()
        reader.join(5)
        assert not reader.is_alive(), "the callback ran with the cache locked"

    cache = LRUCache(1, on_evict=on_evict)
    cache.put("a", 1)
    cache.put("b", 2)
    assert seen == [1]


def test_concurrent_puts_keep_the_books_straight() -> None:
    cache: LRUCache[int, bytes] = LRUCache(1000, size_of=len)

    def fill(start: int) -> None:
        for key in range(start, start + 500):
            cache.put(key, b"x" * (key % 7 + 1))

    threads = [threading.Thread(target=fill, args=(n * 500,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert cache.total == sum(len(value) for _, value in cache.items()) <= 1000
