"""Predicting the next memory accesses, and a hot cache that loads them ahead of time.

:class:`AccessPredictor` learns, per session, which item tends to follow the last
few accessed ones: a variable-order Markov model (orders 1..``max_order``) that
blends predictions from the longest context it has seen down to shorter ones, each
lower order weighted by the *escape* probability of the orders above it (PPM-C:
``distinct / (total + distinct)``). A long, well-seen context dominates; an unseen
one backs off smoothly instead of falling silent. Fixed-window schemes lose either
the long patterns or the rare ones; back-off keeps both.

:class:`Prefetcher` puts an LRU :class:`HotCache` in front of a loader: every access
is recorded, and items predicted above ``threshold`` (0.6 by default) are loaded
into the cache before they are asked for. It counts hits, misses, prefetch loads and
the prefetched items that were used (precision) or evicted unused (wasted loads).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from memlens.core.errors import ConfigError

Context = tuple[Hashable, ...]


class AccessPredictor:
    """Variable-order Markov model of access sequences, one history per session."""

    def __init__(self, max_order: int = 3, *, history: int = 64) -> None:
        if max_order < 1:
            raise ConfigError(f"invalid max_order {max_order!r}: expected at least 1")
        self.max_order = max_order
        # context (last k items) -> Counter of the item that followed it
        self._counts: dict[Context, collections.Counter[Hashable]] = {}
        self._history: dict[str, collections.deque[Hashable]] = {}
        self._history_len = max(history, max_order + 1)
        self._lock = threading.Lock()

    def record(self, session_id: str, item: Hashable) -> None:
        """Note that ``item`` was accessed next in ``session_id``."""
        with self._lock:
            hist = self._history.get(session_id)
            if hist is None:
                hist = self._history[session_id] = collections.deque(maxlen=self._history_len)
            seq = list(hist)
            for order in range(1, min(self.max_order, len(seq)) + 1):
                context = tuple(seq[-order:])
                counter = self._counts.get(context)
                if counter is None:
                    counter = self._counts[context] = collections.Counter()
                counter[item] += 1
            hist.append(item)

    def learn(self, session_id: str, items: Iterable[Hashable]) -> None:
        """Record a whole sequence (e.g. a replayed trace)."""
        for item in items:
            self.record(session_id, item)

    def history(self, session_id: str) -> list[Hashable]:
        with self._lock:
            return list(self._history.get(session_id, ()))

    def predict_next_accesses(
        self, session_id: str, item: Hashable | None = None, n: int = 3
    ) -> list[tuple[Hashable, float]]:
        """The ``n`` likeliest next items after ``item`` (default: the session's last
        access), each with a confidence in [0, 1], highest first."""
        with self._lock:
            seq = list(self._history.get(session_id, ()))
            if item is not None and (not seq or seq[-1] != item):
                seq.append(item)
            if not seq:
                return []
            scores: dict[Hashable, float] = {}
            weight = 1.0  # probability mass not yet given to a longer context
            for order in range(min(self.max_order, len(seq)), 0, -1):
                counter = self._counts.get(tuple(seq[-order:]))
                if not counter:
                    continue
                total = sum(counter.values())
                distinct = len(counter)
                denominator = total + distinct
                for candidate, count in counter.items():
                    scores[candidate] = scores.get(candidate, 0.0) + weight * count / denominator
                weight *= distinct / denominator
                if weight < 1e-6:
                    break
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], str(kv[0])))
        return [(key, min(1.0, score)) for key, score in ranked[: max(0, n)]]

    def state(self) -> dict[str, Any]:
        """The learned counts, JSON-ready (contexts and items as strings)."""
        with self._lock:
            return {
                "max_order": self.max_order,
                "counts": [
                    [list(map(str, ctx)), {str(k): v for k, v in counter.items()}]
                    for ctx, counter in self._counts.items()
                ],
            }

    def load_state(self, state: dict[str, Any]) -> None:
        """Merge counts saved by :meth:`state` (e.g. from another session's store)."""
        with self._lock:
            for ctx, counts in state.get("counts", []):
                counter = self._counts.setdefault(tuple(ctx), collections.Counter())
                for key, value in counts.items():
                    counter[key] += int(value)

    def transitions(self, min_support: int = 3) -> list[tuple[Context, Hashable, int, int]]:
        """``(context, next item, count, context total)`` seen at least ``min_support`` times."""
        with self._lock:
            out = []
            for ctx, counter in self._counts.items():
                total = sum(counter.values())
                for item, count in counter.items():
                    if count >= min_support:
                        out.append((ctx, item, count, total))
            return out


@dataclass
class CacheStats:
    """What a :class:`HotCache` saw: hit rate and prefetch precision."""

    accesses: int = 0
    hits: int = 0
    misses: int = 0
    prefetch_loads: int = 0
    prefetch_used: int = 0
    prefetch_wasted: int = 0

    @property
    def hit_rate(self) -> float:
        return self.hits / self.accesses if self.accesses else 0.0

    @property
    def precision(self) -> float:
        """Prefetched items used before eviction, over prefetched items settled."""
        settled = self.prefetch_used + self.prefetch_wasted
        return self.prefetch_used / settled if settled else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(hit_rate=self.hit_rate, precision=self.precision)
        return out


class HotCache:
    """A bounded LRU of loaded values that knows which entries were prefetched."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ConfigError(f"invalid cache capacity {capacity!r}: expected at least 1")
        self.capacity = capacity
        self._data: collections.OrderedDict[Hashable, tuple[Any, bool]] = collections.OrderedDict()
        self.stats = CacheStats()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: Hashable) -> tuple[bool, Any]:
        """``(hit, value)``; a hit on a prefetched entry counts it as used."""
        self.stats.accesses += 1
        found = self._data.get(key)
        if found is None:
            self.stats.misses += 1
            return False, None
        value, prefetched = found
        if prefetched:
            self.stats.prefetch_used += 1
        self._data[key] = (value, False)
        self._data.move_to_end(key)
        self.stats.hits += 1
        return True, value

    def put(self, key: Hashable, value: Any, *, prefetched: bool = False) -> None:
        if key in self._data:
            self._data.move_to_end(key)
            if not prefetched:
                self._data[key] = (value, False)
            return
        if prefetched:
            self.stats.prefetch_loads += 1
        self._data[key] = (value, prefetched)
        while len(self._data) > self.capacity:
            _evicted, (_value, was_prefetched) = self._data.popitem(last=False)
            if was_prefetched:
                self.stats.prefetch_wasted += 1


class Prefetcher:
    """A hot cache over ``loader`` that prefetches the predicted next accesses.

    ``prefetch=False`` gives the plain LRU baseline with the same bookkeeping.
    """

    def __init__(
        self,
        loader: Callable[[Hashable], Any],
        *,
        capacity: int = 64,
        predictor: AccessPredictor | None = None,
        threshold: float = 0.6,
        lookahead: int = 3,
        prefetch: bool = True,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"invalid threshold {threshold!r}: expected 0..1")
        self.loader = loader
        self.cache = HotCache(capacity)
        self.predictor = predictor or AccessPredictor()
        self.threshold = threshold
        self.lookahead = lookahead
        self.prefetch_enabled = prefetch
        self.loads = 0

    @property
    def stats(self) -> CacheStats:
        return self.cache.stats

    def access(self, session_id: str, key: Hashable) -> Any:
        """Return the value of ``key`` (from the cache or the loader), then prefetch."""
        hit, value = self.cache.get(key)
        if not hit:
            value = self._load(key)
            self.cache.put(key, value)
        self.predictor.record(session_id, key)
        if self.prefetch_enabled:
            for candidate, confidence in self.predictor.predict_next_accesses(
                session_id, n=self.lookahead
            ):
                if confidence < self.threshold:
                    break
                if candidate not in self.cache:
                    self.cache.put(candidate, self._load(candidate), prefetched=True)
        return value

    def _load(self, key: Hashable) -> Any:
        self.loads += 1
        return self.loader(key)
