"""Caches that cannot grow without bound or keep their owners alive, and say what they hold.

- :class:`WeakReferenceCache`: values held weakly; an entry disappears when the
  program drops its value. Values that cannot be weakly referenced (``int``,
  ``str``, ``tuple``, ``list``, ``dict``) raise :class:`~memlens.core.errors.CacheError`
  at ``put`` instead of being silently kept alive.
- :func:`memoize`: a memo bounded by entries *and* bytes, built on
  ``cachetools.LRUCache`` (which bounds one or the other). On a method it keys on
  the instance without holding it: when an instance is collected, its entries go
  with it (``functools.lru_cache`` on a method keeps every instance alive).

Both count hits, misses, evictions and bytes, register with
:mod:`memlens.remedies.registry` (so the monitor exports them and the recovery
ladder can clear them) and are safe to use from several threads.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar, overload

from memlens.core.errors import CacheError, ConfigError, require
from memlens.core.units import parse_size
from memlens.remedies import registry
from memlens.remedies.sizing import deep_sizeof

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CacheStats:
    """Counters of one cache since it was built (``bytes`` is what it holds now)."""

    name: str
    hits: int
    misses: int
    evictions: int
    rejected: int
    entries: int
    bytes: int
    max_entries: int | None
    max_bytes: int | None

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hit_rate": self.hit_rate}


def _bound(value: int | str | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        n = parse_size(value) if isinstance(value, str) else int(value)
    except (ValueError, TypeError, ConfigError) as exc:
        raise ConfigError(f"invalid {what}={value!r}: {exc}") from exc
    if n <= 0:
        raise ConfigError(f"invalid {what}={value!r}: must be above 0 (or None for no bound)")
    return n


def _weakref_error(value: object, where: str) -> CacheError:
    kind = type(value).__name__
    return CacheError(
        f"{where} cannot hold a {kind!r} weakly: built-in {kind} objects cannot be weakly "
        "referenced; cache instances of a class (a subclass of it works) or use memoize()"
    )


class WeakReferenceCache(Generic[K, V]):
    """A mapping whose values are held weakly (see the module docstring).

    ``max_entries`` bounds the number of keys (keys are held strongly); beyond it the
    oldest entry is dropped. Thread-safe; weak-reference callbacks only queue the
    dead key, which the next operation removes, so they never take the lock.
    """

    kind = "cache"

    def __init__(self, name: str = "weak", max_entries: int | None = None) -> None:
        self.name = name
        self.max_entries = _bound(max_entries, "max_entries")
        self._data: dict[K, weakref.ref[Any]] = {}
        self._sizes: dict[K, int] = {}
        self._bytes = 0
        self._dead: deque[tuple[K, weakref.ref[Any]]] = deque()
        self._lock = threading.RLock()
        self.hits = self.misses = self.evictions = 0
        self.last_clear_pause = 0.0  # seconds: the longest slice of the last clear()
        registry.register(self)

    def _on_death(self, key: K) -> Callable[[weakref.ref[Any]], None]:
        dead = self._dead

        def callback(ref: weakref.ref[Any]) -> None:
            dead.append((key, ref))  # deque.append is atomic: no lock in a GC callback

        return callback

    def _purge(self) -> None:
        while self._dead:
            key, ref = self._dead.popleft()
            if self._data.get(key) is ref:
                del self._data[key]
                self._bytes -= self._sizes.pop(key, 0)
                self.evictions += 1

    def put(self, key: K, value: V) -> None:
        """Cache ``value`` under ``key`` without keeping it alive."""
        try:
            ref = weakref.ref(value, self._on_death(key))
        except TypeError:
            raise _weakref_error(value, f"WeakReferenceCache {self.name!r}") from None
        size = deep_sizeof(value, limit=1000)
        with self._lock:
            self._purge()
            if key in self._data:
                del self._data[key]
                self._bytes -= self._sizes.pop(key, 0)
            self._data[key] = ref
            self._sizes[key] = size
            self._bytes += size
            if self.max_entries is not None:
                while len(self._data) > self.max_entries:
                    oldest = next(iter(self._data))
                    del self._data[oldest]
                    self._bytes -= self._sizes.pop(oldest, 0)
                    self.evictions += 1

    __setitem__ = put

    def get(self, key: K, default: V | None = None) -> V | None:
        """The live value under ``key``, else ``default`` (counted as a miss)."""
        with self._lock:
            self._purge()
            ref = self._data.get(key)
            value = ref() if ref is not None else None
            if value is None:
                self.misses += 1
                return default
            self.hits += 1
            return value

    def __getitem__(self, key: K) -> V:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        with self._lock:
            self._purge()
            ref = self._data.get(key)  # type: ignore[arg-type]
            return ref is not None and ref() is not None

    def pop(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            self._purge()
            ref = self._data.pop(key, None)
            self._bytes -= self._sizes.pop(key, 0)
        value = ref() if ref is not None else None
        return value if value is not None else default

    def __len__(self) -> int:
        with self._lock:
            self._purge()
            return len(self._data)

    def keys(self) -> list[K]:
        with self._lock:
            self._purge()
            return [k for k, ref in self._data.items() if ref() is not None]

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())

    def clear(self) -> int:
        """Drop every entry; returns how many there were.

        The mappings are swapped for empty ones under the lock and emptied outside
        it in short slices (:attr:`last_clear_pause` is the longest), so clearing a
        big cache never holds the GIL for long.
        """
        with self._lock:
            n = len(self._data)
            detached: list[dict[Any, Any]] = [self._data, self._sizes]
            self._data, self._sizes = {}, {}
            self._bytes = 0
            self._dead.clear()
        self.last_clear_pause = _drain_in_slices(detached, _Slicer(256))
        return n

    def stats(self) -> CacheStats:
        with self._lock:
            self._purge()
            return CacheStats(
                self.name,
                self.hits,
                self.misses,
                self.evictions,
                0,
                len(self._data),
                self._bytes,
                self.max_entries,
                None,
            )

    def metrics(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self.stats()).items() if isinstance(v, int)}

    def _after_fork(self) -> None:
        self._lock = threading.RLock()


SLICE_TARGET = 0.0005  # seconds of GIL hold a clearing slice aims for


class _Slicer:
    """Runs work in slices sized to hold the GIL about :data:`SLICE_TARGET` each.

    A slice's cost depends on what the freed objects own (a bare ``bytes`` or a
    whole object graph), so the batch size adapts: halved after a slice that ran
    long, doubled after one that ran short. Between slices a waiting thread (an event
    loop) gets the GIL.
    """

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.longest = 0.0
        self._yield_gil = threading.active_count() > 1  # only another thread can wait
        self._began = time.perf_counter()

    def hand_over(self) -> None:
        held = time.perf_counter() - self._began
        self.longest = max(self.longest, held)
        if held > SLICE_TARGET:
            self.batch = max(8, self.batch // 2)
        elif held < SLICE_TARGET / 4:
            self.batch = min(1 << 16, self.batch * 2)
        if self._yield_gil:
            time.sleep(0)  # hand the GIL to a waiting thread (an event loop)
        self._began = time.perf_counter()


def _free_in_slices(lru: Any, batch: int = 256) -> float:
    """Free a detached LRU's values a slice at a time, releasing the GIL in between;
    returns the longest slice in seconds (the longest the GIL was held).

    One deallocation of a huge mapping holds the GIL (and stalls an event loop) for
    its whole length. So the detached cache is taken apart in place:
    its index mappings are emptied in slices (only decrefs), then its storage dict, a
    slice at a time.
    """
    slicer = _Slicer(batch)
    data = getattr(lru, "_Cache__data", None)  # cachetools' storage; else the slow way
    if not isinstance(data, dict):
        lru._on_evict = lambda key: None
        while lru:
            for _ in range(min(len(lru), slicer.batch)):
                lru.popitem()
            slicer.hand_over()
        return slicer.longest
    # The index mappings first: the storage still holds their keys, so that only
    # decrefs. Then the storage itself, whose popped entries are freed slice by slice.
    others = [m for m in vars(lru).values() if isinstance(m, dict) and m is not data]
    del lru
    return _drain_in_slices([*others, data], slicer)


def _drain_in_slices(mappings: list[dict[Any, Any]], slicer: _Slicer) -> float:
    """Empty detached mappings in order, a slice at a time; the longest slice (s)."""
    first = slicer.batch
    while mappings:
        mapping = mappings.pop(0)
        slicer.batch = first  # a new mapping's entries may cost far more than the last's
        while mapping:
            for _ in range(min(len(mapping), slicer.batch)):
                mapping.popitem()
            slicer.hand_over()
        del mapping
    return slicer.longest


class _Token:
    """Stands for one instance in memo keys, so the key never holds the instance."""

    __slots__ = ("__weakref__",)


@functools.cache
def _lru_class() -> Any:
    """cachetools' LRU, telling its owner about each eviction (built once, on first use)."""
    cachetools = require("cachetools", "remedies")

    class _Lru(cachetools.LRUCache):  # type: ignore[name-defined]
        def __init__(
            self, maxsize: float, getsizeof: Callable[[Any], int], on_evict: Callable[[Any], None]
        ) -> None:
            super().__init__(maxsize, getsizeof)
            self._on_evict = on_evict

        def popitem(self) -> tuple[Any, Any]:
            key, value = super().popitem()
            self._on_evict(key)
            return key, value

    return _Lru


class Memo:
    """A memoized function or method; built by :func:`memoize` (see there)."""

    kind = "cache"

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        max_entries: int | None,
        max_bytes: int | str | None,
        name: str | None,
        sizeof: Callable[[Any], int] | None,
        typed: bool,
    ) -> None:
        if inspect.iscoroutinefunction(func):
            raise CacheError(
                f"memoize cannot cache coroutine function {func.__qualname__}: it would "
                "cache the coroutine object, which can be awaited only once"
            )
        self.func = func
        self.name = name or f"{func.__module__}.{func.__qualname__}"
        self.max_entries = _bound(max_entries, "max_entries")
        self.max_bytes = _bound(max_bytes, "max_bytes")
        self._size_of = sizeof or deep_sizeof
        self.typed = typed
        self._lock = threading.RLock()
        keys = require("cachetools.keys", "remedies")
        self._make_key = keys.typedkey if typed else keys.hashkey
        self._lru = self._new_lru()
        self._tokens: dict[int, _Token] = {}  # id(instance) -> token, while it lives
        self._keys: dict[_Token, set[Any]] = {}  # token -> its keys in the LRU
        self.hits = self.misses = self.evictions = self.rejected = 0
        self.last_clear_pause = 0.0  # seconds: the longest slice of the last clear()
        functools.update_wrapper(self, func)
        registry.register(self)

    # -- sizes and keys ---------------------------------------------------------------
    def _sizeof(self, value: Any) -> int:
        return max(0, int(self._size_of(value)))

    def _new_lru(self) -> Any:
        return _lru_class()(self.max_bytes or float("inf"), self._sizeof, self._evicted)

    def _key(self, token: _Token | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        key = self._make_key(*args, **kwargs)
        return key if token is None else (token, key)

    def _token_for(self, instance: object) -> _Token:
        ident = id(instance)
        token = self._tokens.get(ident)
        if token is not None:
            return token
        try:
            weakref.finalize(instance, self._forget, ident)
        except TypeError:
            raise CacheError(
                f"memoize on {self.func.__qualname__}: {type(instance).__name__} instances "
                "cannot be weakly referenced, so their entries could not be dropped with "
                "them; add '__weakref__' to its __slots__"
            ) from None
        token = self._tokens[ident] = _Token()
        self._keys[token] = set()
        return token

    def _forget(self, ident: int) -> None:
        # Runs when the instance is collected (before its id can be reused).
        with self._lock:
            token = self._tokens.pop(ident, None)
            for key in self._keys.pop(token, ()) if token is not None else ():
                self._lru.pop(key, None)

    def _evicted(self, key: Any) -> None:
        self.evictions += 1
        if isinstance(key, tuple) and key and isinstance(key[0], _Token):
            keys = self._keys.get(key[0])
            if keys is not None:
                keys.discard(key)

    # -- calling ------------------------------------------------------------------------
    def _call(self, instance: object | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        with self._lock:
            token = self._token_for(instance) if instance is not None else None
            key = self._key(token, args, kwargs)
            try:
                value = self._lru[key]
            except KeyError:
                self.misses += 1
            else:
                self.hits += 1
                return value
        call_args = (instance, *args) if instance is not None else args
        value = self.func(*call_args, **kwargs)  # outside the lock: calls may recurse
        with self._lock:
            if token is not None and self._tokens.get(id(instance)) is not token:
                return value  # the instance was collected meanwhile
            try:
                self._lru[key] = value
            except ValueError:  # alone larger than max_bytes
                self.rejected += 1
                return value
            if token is not None:
                self._keys[token].add(key)
            if self.max_entries is not None:
                while len(self._lru) > self.max_entries:
                    self._lru.popitem()
        return value

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(None, args, kwargs)

    def __get__(self, instance: object | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        call = self._call

        @functools.wraps(self.func)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return call(instance, args, kwargs)

        bound.cache_info = self.stats  # type: ignore[attr-defined]
        bound.cache_clear = self.clear  # type: ignore[attr-defined]
        return bound

    # -- reporting ----------------------------------------------------------------------
    def clear(self) -> int:
        """Drop every entry (of every instance); returns how many there were."""
        with self._lock:
            n = len(self._lru)
            detached = [self._lru]  # the helper must hold the only reference
            self._lru = self._new_lru()
            for keys in self._keys.values():
                keys.clear()
        self.last_clear_pause = _free_in_slices(detached.pop())
        return n

    cache_clear = clear

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self.name,
                self.hits,
                self.misses,
                self.evictions,
                self.rejected,
                len(self._lru),
                int(self._lru.currsize),
                self.max_entries,
                self.max_bytes,
            )

    cache_info = stats

    @property
    def instances(self) -> int:
        """Instances that have entries or had them and are still alive."""
        return len(self._tokens)

    def metrics(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self.stats()).items() if isinstance(v, int)}

    def _after_fork(self) -> None:
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<memoize {self.name} {self.stats()}>"


@overload
def memoize(func: F) -> F: ...


@overload
def memoize(
    *,
    max_entries: int | None = 1024,
    max_bytes: int | str | None = "64 MiB",
    name: str | None = None,
    sizeof: Callable[[Any], int] | None = None,
    typed: bool = False,
) -> Callable[[F], F]: ...


def memoize(
    func: Callable[..., Any] | None = None,
    *,
    max_entries: int | None = 1024,
    max_bytes: int | str | None = "64 MiB",
    name: str | None = None,
    sizeof: Callable[[Any], int] | None = None,
    typed: bool = False,
) -> Any:
    """Memoize a function or method, bounded by entries and by bytes.

    ``@memoize`` or ``@memoize(max_entries=10_000, max_bytes="256 MiB")``. The least
    recently used entries are evicted when either bound is exceeded; a single value
    larger than ``max_bytes`` is returned but not cached (counted as ``rejected``).
    Values are sized with :func:`~memlens.remedies.sizing.deep_sizeof` unless you pass
    ``sizeof`` (``len`` for bytes-like values is much cheaper). On a method, entries
    are per instance and go away when the instance is collected; the bounds are
    shared by all instances. Arguments must be hashable, as for ``functools.lru_cache``.
    ``fn.stats()``/``fn.cache_info()`` report counters, ``fn.clear()`` empties it.
    """

    def decorate(f: Callable[..., Any]) -> Memo:
        return Memo(
            f, max_entries=max_entries, max_bytes=max_bytes, name=name, sizeof=sizeof, typed=typed
        )

    return decorate(func) if func is not None else decorate
