"""The instrumented caches and pools of this process, for exporters and the recovery ladder.

Every cache and pool in :mod:`memlens.remedies` registers itself here (weakly, so
registration never keeps one alive). The monitor's Prometheus and OpenTelemetry
exporters read :func:`snapshot` on scrape, and the recovery ladder's first step
calls :func:`clear_caches`. After ``os.fork()`` each instrument replaces its locks
in the child, since a lock held by a parent thread would never be released there.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@runtime_checkable
class Instrument(Protocol):
    """A cache, pool or recovery ladder that reports counters (``kind`` is a key of
    :data:`METRICS`)."""

    name: str
    kind: str

    def metrics(self) -> dict[str, float]:
        """Current values of the counters and gauges in :data:`METRICS` for ``kind``."""
        ...

    def _after_fork(self) -> None: ...


@dataclass(frozen=True)
class Metric:
    """How one counter or gauge of an instrument is exported."""

    key: str
    type: str  # "counter" or "gauge"
    help: str
    unit: str = ""  # "bytes", "seconds" or "" (a count)


METRICS: dict[str, tuple[Metric, ...]] = {
    "cache": (
        Metric("hits", "counter", "Cache lookups answered from the cache."),
        Metric("misses", "counter", "Cache lookups that had to compute or found nothing."),
        Metric("evictions", "counter", "Entries evicted by a bound or because the value died."),
        Metric("rejected", "counter", "Values not cached because they alone exceed the bound."),
        Metric("entries", "gauge", "Entries held now."),
        Metric("bytes", "gauge", "Bytes held by the cached values now.", "bytes"),
    ),
    "pool": (
        Metric("hits", "counter", "Requests served by an idle pooled object."),
        Metric("misses", "counter", "Requests that found no idle object."),
        Metric("created", "counter", "Objects created by the pool's factories."),
        Metric("returned", "counter", "Objects put back into the pool."),
        Metric("discarded", "counter", "Objects not kept because the pool was full."),
        Metric("exhausted", "counter", "Requests refused because every object was in use."),
        Metric("leaked", "counter", "Borrowed objects dropped without being returned."),
        Metric("idle", "gauge", "Idle objects held by the pool."),
        Metric("borrowed", "gauge", "Objects handed out and not yet returned."),
        Metric("idle_bytes", "gauge", "Bytes of idle buffers held by the pool.", "bytes"),
    ),
    "resources": (
        Metric("acquisitions", "counter", "Times a managed resource was acquired."),
        Metric("failures", "counter", "Acquisitions whose block raised."),
        Metric("timeouts", "counter", "Acquisitions refused because the resource stayed busy."),
        Metric("hold", "counter", "Total time resources were held.", "seconds"),
        Metric("registered", "gauge", "Resources registered now."),
        Metric("in_use", "gauge", "Resources acquired now."),
    ),
    "recovery": (
        Metric("runs", "counter", "Runs of the recovery ladder."),
        Metric("suppressed", "counter", "Triggers ignored: a run was under way or too recent."),
        Metric("reclaimed", "counter", "RSS reclaimed by recovery runs.", "bytes"),
        Metric("last_reclaimed", "gauge", "RSS reclaimed by the last recovery run.", "bytes"),
    ),
    # One instrument per rung of the ladder, named by the step ("gc.collect", ...).
    "recovery_step": (
        Metric("runs", "counter", "Times this recovery step ran."),
        Metric("skipped", "counter", "Times this step was skipped (unavailable, e.g. no hook)."),
        Metric("errors", "counter", "Times this step raised (the ladder went on)."),
        Metric("stopped", "counter", "Times memory was below the target after this step."),
        Metric("reclaimed", "counter", "RSS reclaimed by this step.", "bytes"),
        Metric("allocator_reclaimed", "counter", "Allocator bytes freed by this step.", "bytes"),
        Metric("duration", "counter", "Time spent in this step.", "seconds"),
        Metric(
            "longest_hold",
            "gauge",
            "Longest single GIL hold (pause) of this step's last run.",
            "seconds",
        ),
    ),
}

_lock = threading.Lock()
_instruments: weakref.WeakSet[Instrument] = weakref.WeakSet()
_cache_clearers: list[Callable[[], object]] = []


def register(instrument: Instrument) -> None:
    """Make ``instrument`` visible to exporters (held weakly)."""
    with _lock:
        _instruments.add(instrument)


def unregister(instrument: Instrument) -> None:
    with _lock:
        _instruments.discard(instrument)


def instruments(kind: str | None = None) -> list[Instrument]:
    """The live instruments, optionally of one ``kind``, sorted by name."""
    with _lock:
        found = list(_instruments)
    return sorted(
        (i for i in found if kind is None or i.kind == kind), key=lambda i: (i.kind, i.name)
    )


def snapshot() -> list[tuple[str, str, dict[str, float]]]:
    """``(kind, name, metrics)`` of every live instrument, for exporters."""
    return [(i.kind, i.name, i.metrics()) for i in instruments()]


def clear_caches(extra: Iterable[Callable[[], object]] = ()) -> int:
    """Clear every registered cache (and call ``extra`` clearers); returns entries dropped."""
    dropped = 0
    for cache in instruments("cache"):
        clear = getattr(cache, "clear", None)
        if clear is not None:
            result = clear()
            dropped += result if isinstance(result, int) else 0
    for clearer in (*_cache_clearers, *extra):
        result = clearer()
        dropped += result if isinstance(result, int) else 0
    return dropped


def register_cache_clearer(clearer: Callable[[], object]) -> Callable[[], None]:
    """Also clear a cache memlens did not build (``functools.lru_cache``'s ``cache_clear``,
    a dict's ``clear``) when the recovery ladder clears caches; returns an unregister
    function."""
    with _lock:
        _cache_clearers.append(clearer)

    def remove() -> None:
        with _lock:
            if clearer in _cache_clearers:
                _cache_clearers.remove(clearer)

    return remove


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    for instrument in list(_instruments):
        instrument._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
