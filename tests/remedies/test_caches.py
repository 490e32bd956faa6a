"""WeakReferenceCache and memoize: bounds, weak values, method safety, threads, fork."""

from __future__ import annotations

import gc
import os
import threading
import weakref

import pytest

from memlens.core.errors import CacheError, ConfigError, MemlensError
from memlens.remedies import registry
from memlens.remedies.caches import CacheStats, WeakReferenceCache, memoize
from memlens.remedies.sizing import deep_sizeof
from tests.remedies.helpers import held_by_another_thread, in_forked_child


class Doc:
    def __init__(self, text: str) -> None:
        self.text = text


def test_weak_cache_drops_entries_when_the_value_dies() -> None:
    cache: WeakReferenceCache[str, Doc] = WeakReferenceCache("docs")
    doc = Doc("x" * 1000)
    cache.put("a", doc)
    assert cache.get("a") is doc
    assert "a" in cache and len(cache) == 1
    assert cache.stats().bytes >= 1000
    del doc
    gc.collect()
    assert cache.get("a") is None
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.evictions, stats.entries) == (1, 1, 1, 0)
    assert stats.bytes == 0


@pytest.mark.parametrize("value", [1, "text", (1, 2), [1], {"a": 1}, b"raw"])
def test_weak_cache_rejects_values_that_cannot_be_weakly_referenced(value: object) -> None:
    cache: WeakReferenceCache[str, object] = WeakReferenceCache("strict")
    with pytest.raises(CacheError, match="cannot hold a .* weakly") as info:
        cache.put("k", value)
    assert isinstance(info.value, MemlensError) and isinstance(info.value, TypeError)
    assert len(cache) == 0


def test_weak_cache_bounds_its_keys() -> None:
    cache: WeakReferenceCache[int, Doc] = WeakReferenceCache("bounded", max_entries=3)
    docs = [Doc(str(i)) for i in range(5)]
    for i, d in enumerate(docs):
        cache[i] = d
    assert cache.keys() == [2, 3, 4]
    assert cache.stats().evictions == 2
    with pytest.raises(KeyError):
        cache[0]
    assert cache.pop(4) is docs[4] and cache.clear() == 2


def test_memoize_bounds_entries_and_bytes() -> None:
    calls = []

    @memoize(max_entries=3, max_bytes=10_000, sizeof=len)
    def blob(n: int) -> bytes:
        calls.append(n)
        return bytes(n)

    for n in (1000, 2000, 3000):
        blob(n)
    assert blob(1000) == bytes(1000) and calls == [1000, 2000, 3000]
    blob(5000)  # 6000 + 5000 > 10_000: evicts the least recently used (2000)
    s = blob.stats()
    assert s.entries == 3 and s.bytes == 9000 and s.evictions == 1
    blob(20_000)  # alone above the bound: returned, not cached
    assert blob.stats().rejected == 1 and blob.stats().entries == 3
    for n in (1, 2, 3, 4):
        blob(n)
    assert blob.stats().entries == 3  # the entry bound
    assert isinstance(blob.cache_info(), CacheStats)
    assert blob.clear() == 3 and blob.stats().entries == 0


def test_memoize_on_a_method_does_not_keep_instances_alive() -> None:
    class Model:
        def __init__(self, scale: int) -> None:
            self.scale = scale

        @memoize(max_entries=100)
        def predict(self, x: int) -> list[int]:
            return [x * self.scale] * 100

    a, b = Model(2), Model(3)
    assert a.predict(1)[0] == 2 and b.predict(1)[0] == 3  # per instance
    assert a.predict(1) is a.predict(1)
    memo = Model.__dict__["predict"]
    assert memo.stats().entries == 2 and memo.instances == 2
    alive = weakref.ref(a)
    del a
    gc.collect()
    assert alive() is None  # lru_cache would keep it
    assert memo.stats().entries == 1 and memo.instances == 1
    assert b.predict.cache_info().hits == 2  # the two calls of a.predict(1) above


def test_memoize_rejects_instances_that_cannot_be_weakly_referenced() -> None:
    class Slotted:
        __slots__ = ("n",)

        def __init__(self) -> None:
            self.n = 1

        @memoize
        def value(self) -> int:
            return self.n

    with pytest.raises(CacheError, match="__weakref__"):
        Slotted().value()


def test_memoize_refuses_coroutines_and_bad_bounds() -> None:
    async def fetch() -> int:
        return 1

    with pytest.raises(CacheError, match="coroutine"):
        memoize(fetch)
    with pytest.raises(ConfigError, match="max_bytes"):
        memoize(max_bytes="lots")(len)
    with pytest.raises(ConfigError, match="max_entries"):
        memoize(max_entries=0)(len)


def test_memoize_from_many_threads() -> None:
    @memoize(max_entries=50, max_bytes=None)
    def square(n: int) -> int:
        return n * n

    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(2000):
                assert square((i * seed) % 200) == ((i * seed) % 200) ** 2
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    s = square.stats()
    assert s.entries <= 50 and s.hits + s.misses == 16_000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_memoize_works_in_a_forked_child_while_a_thread_held_its_lock() -> None:
    @memoize
    def ident(n: int) -> int:
        return n

    ident(1)
    with held_by_another_thread(lambda: ident._lock):
        # In the child the holder thread does not exist; the lock must not be inherited.
        assert in_forked_child(lambda: ident(2) == 2 and ident.stats().entries == 2)


def test_caches_register_for_export_and_clearing() -> None:
    @memoize(name="test.registry")
    def f(n: int) -> int:
        return n

    f(1)
    names = {(kind, name) for kind, name, _ in registry.snapshot()}
    assert ("cache", "test.registry") in names
    metrics = dict((n, m) for k, n, m in registry.snapshot() if k == "cache")["test.registry"]
    assert metrics["entries"] == 1 and metrics["misses"] == 1
    assert {m.key for m in registry.METRICS["cache"]} <= set(metrics)
    cleared = []
    remove = registry.register_cache_clearer(lambda: cleared.append(1))
    try:
        assert registry.clear_caches() >= 1
    finally:
        remove()
    assert f.stats().entries == 0 and cleared == [1]


def test_deep_sizeof_counts_what_a_value_holds() -> None:
    strings = [f"{i:0100d}" for i in range(100)]  # distinct objects
    assert deep_sizeof(strings) > 100 * 100
    assert deep_sizeof(strings, limit=10) < deep_sizeof(strings)
    assert deep_sizeof(Doc) < 1000  # classes are shared, not charged


def test_big_caches_clear_in_slices_and_stay_usable_meanwhile(monkeypatch) -> None:
    """A clear hands the GIL over between slices (so an event loop keeps running),
    frees everything, and other threads may use the cache while it is emptied."""
    from memlens.remedies import caches

    slices = []
    hand_over = caches._Slicer.hand_over

    def counting(self: caches._Slicer) -> None:
        slices.append(self.batch)
        hand_over(self)

    monkeypatch.setattr(caches._Slicer, "hand_over", counting)

    @memoize(name="test.sliced", max_entries=None, max_bytes=None)
    def render(n: int) -> bytes:
        return bytes(100) + n.to_bytes(4, "little")

    for i in range(30_000):
        render(i)
    weak = WeakReferenceCache[int, Doc](name="test.sliced-weak")
    docs = [Doc(str(i)) for i in range(30_000)]
    for i, doc in enumerate(docs):
        weak.put(i, doc)

    errors: list[BaseException] = []
    done = threading.Event()

    def meanwhile() -> None:
        try:
            while not done.is_set():
                assert render(7) == bytes(100) + (7).to_bytes(4, "little")
                weak.put(-1, docs[0])
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    other = threading.Thread(target=meanwhile)
    other.start()
    try:
        assert render.clear() >= 30_000
        memo_slices = len(slices)
        assert weak.clear() >= 30_000
    finally:
        done.set()
        other.join()
    assert not errors
    # 30k entries in three mappings cannot go in a handful of slices of <= 64k.
    assert memo_slices >= 6 and len(slices) - memo_slices >= 4
    assert render.last_clear_pause > 0 and weak.last_clear_pause > 0
    assert render.stats().entries <= 1 and len(weak) <= 1  # only what the thread re-added
