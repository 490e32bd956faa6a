"""Garbage-collector tuning that is measured on your workload, and GC control for hot paths.

Raising GC thresholds is common advice, and it often improves the median while
making the tail worse: fewer collections, each scanning more objects. So
:meth:`GarbageCollectionOptimizer.optimize_gc_settings` runs *your* workload
(a callable for one request) under the current settings and each candidate,
interleaved over several rounds so drift hits all of them alike, and applies a
candidate only when both its p99 call latency and its throughput beat the current
settings by ``min_gain`` in the medians and in most paired rounds. GC pauses (p50/p99/max per collection) are reported too;
the decision uses call latency because that is where a pause lands on a request.

Also here: :meth:`~GarbageCollectionOptimizer.disable_gc_temporarily` (nestable,
re-enabled on any exit, warns when held too long), cleanup callbacks,
:meth:`~GarbageCollectionOptimizer.perform_optimized_collection` (what a
collection freed) and :meth:`~GarbageCollectionOptimizer.monitor_object_lifecycle`
(objects that outlive the time they were expected to live).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from memlens.core.errors import GCError
from memlens.remedies import collection
from memlens.remedies.readings import MemoryReading, Reclaimed, read_memory

logger = logging.getLogger("memlens.remedies")


def _quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class GcSettings:
    """A GC configuration: ``gc.set_threshold(*thresholds)`` and optionally ``gc.freeze()``."""

    thresholds: tuple[int, ...]
    freeze: bool = False
    label: str = ""

    @classmethod
    def current(cls) -> GcSettings:
        return cls(tuple(gc.get_threshold()), False, "current")

    def validate(self) -> None:
        if not self.thresholds or any(int(t) < 0 for t in self.thresholds):
            raise GCError(f"invalid GC thresholds {self.thresholds!r}: non-negative integers")
        if self.thresholds[0] == 0:
            raise GCError("a first threshold of 0 disables collection; use gc.disable() instead")

    def describe(self) -> str:
        text = "thresholds " + "/".join(str(t) for t in self.thresholds)
        return text + (" + gc.freeze()" if self.freeze else "")


@dataclass(frozen=True)
class GcMeasurement:
    """How one setting did on the workload: per-call latency, GC pauses, throughput."""

    settings: GcSettings
    calls: int
    seconds: float
    throughput: float  # calls per second
    latency_p50: float
    latency_p99: float
    latency_max: float
    collections: int
    pause_p50: float
    pause_p99: float
    pause_max: float
    pause_total: float

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["settings"] = self.settings.describe()
        return data


@dataclass(frozen=True)
class GcTuningReport:
    """The figures behind a tuning decision, and the decision."""

    baseline: GcMeasurement
    candidates: list[GcMeasurement]
    chosen: GcSettings | None
    applied: bool
    reason: str
    min_gain: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
            "chosen": self.chosen.describe() if self.chosen else None,
            "applied": self.applied,
            "reason": self.reason,
            "min_gain": self.min_gain,
        }


@dataclass(frozen=True)
class CollectionResult:
    """What :meth:`GarbageCollectionOptimizer.perform_optimized_collection` freed."""

    generations: tuple[int, ...]  # the generations collected, in order
    collected_objects: int
    uncollectable_objects: int
    pause_seconds: float  # time inside gc.collect (the GIL is held throughout)
    callbacks_run: int
    callback_errors: int
    before: MemoryReading
    after: MemoryReading
    reclaimed: Reclaimed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LifecycleRecord:
    """One object watched by :meth:`GarbageCollectionOptimizer.monitor_object_lifecycle`."""

    name: str
    type_name: str
    created: float  # monotonic seconds
    expected_lifetime: float | None
    died: float | None = None
    reported: bool = False

    def age(self, now: float) -> float:
        return (self.died if self.died is not None else now) - self.created

    def overdue(self, now: float) -> bool:
        return (
            self.died is None
            and self.expected_lifetime is not None
            and now - self.created > self.expected_lifetime
        )


def default_candidates(current: GcSettings) -> list[GcSettings]:
    """Raised first thresholds (10x, 50x) and the current ones after ``gc.freeze()``."""
    t = current.thresholds
    rest = tuple(t[1:])
    return [
        GcSettings((t[0] * 10, *rest), label="threshold x10"),
        GcSettings((t[0] * 50, *(max(x, 20) for x in rest)), label="threshold x50"),
        GcSettings(t, freeze=True, label="freeze"),
    ]


# -- GC held off: one process-wide state, nestable across threads ---------------------
class _GcHold:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        # thread ident -> (start, warn after) of each hold, innermost last
        self.holders: dict[int, list[tuple[float, float]]] = {}
        self.was_enabled = True
        self.long_holds = 0
        self.watchdog: threading.Thread | None = None

    def enter(self, warn_after: float) -> tuple[float, float]:
        hold = (time.monotonic(), warn_after)
        with self.lock:
            if not self.holders:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.holders.setdefault(threading.get_ident(), []).append(hold)
            if self.watchdog is None:
                self.watchdog = threading.Thread(
                    target=self._watch, name="memlens-gc-hold", daemon=True
                )
                self.watchdog.start()
            self.wake.notify()
        return hold

    def exit(self, hold: tuple[float, float]) -> None:
        ident = threading.get_ident()
        with self.lock:
            holds = self.holders.get(ident, [])
            if hold in holds:
                holds.remove(hold)
            if not holds:
                self.holders.pop(ident, None)
            if not self.holders and self.was_enabled:
                gc.enable()

    def _watch(self) -> None:
        warned: set[tuple[float, float]] = set()
        with self.lock:
            while True:
                holds = [h for v in self.holders.values() for h in v]
                if not holds:
                    self.wake.wait(10.0)
                    if not self.holders:
                        self.watchdog = None  # the next hold starts a new one
                        return
                    continue
                now = time.monotonic()
                for h in holds:
                    if now - h[0] >= h[1] and h not in warned:
                        warned.add(h)
                        self.long_holds += 1
                        logger.warning(
                            "garbage collection has been disabled for %.1f s "
                            "(disable_gc_temporarily); cycles pile up meanwhile",
                            now - h[0],
                        )
                warned &= set(holds)
                waits = [h[0] + h[1] - now for h in holds if h not in warned]
                self.wake.wait(max(0.01, min(waits)) if waits else 1.0)

    def after_fork(self) -> None:
        # Holds by threads that did not survive the fork can never end: drop them.
        me = threading.get_ident()
        mine = self.holders.get(me, [])
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.holders = {me: mine} if mine else {}
        self.watchdog = None
        if mine:
            self.watchdog = threading.Thread(
                target=self._watch, name="memlens-gc-hold", daemon=True
            )
            self.watchdog.start()
        elif self.was_enabled and not gc.isenabled():
            gc.enable()


_hold = _GcHold()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_hold.after_fork)


class _PauseRecorder:
    """Collects GC pause durations through ``gc.callbacks`` while installed."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self.pauses.append(time.perf_counter() - self._started)
            self._started = 0.0

    def __enter__(self) -> _PauseRecorder:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self)


@contextlib.contextmanager
def _applied(settings: GcSettings) -> Iterator[None]:
    """Run a block under ``settings``, then put the previous ones back."""
    settings.validate()
    previous = gc.get_threshold()
    gc.set_threshold(*settings.thresholds)
    if settings.freeze:
        gc.freeze()
    try:
        yield
    finally:
        if settings.freeze:
            gc.unfreeze()
        gc.set_threshold(*previous)


class GarbageCollectionOptimizer:
    """GC tuning, GC control, cleanup callbacks and lifecycle tracking (module docstring)."""

    def __init__(self, max_tracked: int = 10_000, hold_warning: float = 1.0) -> None:
        self.max_tracked = max_tracked
        self.hold_warning = hold_warning
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], object]] = []
        self._original = GcSettings.current()
        self.applied: GcSettings | None = None
        self.last_report: GcTuningReport | None = None
        self._alive: dict[int, tuple[weakref.ref[Any], LifecycleRecord]] = {}
        self._finished: deque[LifecycleRecord] = deque(maxlen=max_tracked)
        self.lifecycle_dropped = 0

    # -- tuning ------------------------------------------------------------------------
    def measure(
        self, settings: GcSettings, workload: Callable[[], object], calls: int
    ) -> GcMeasurement:
        """Run ``workload`` ``calls`` times under ``settings`` and measure it."""
        gc.collect()  # every measurement starts from the same, clean heap
        latencies = []
        perf = time.perf_counter
        with _applied(settings), _PauseRecorder() as pauses:
            began = perf()
            for _ in range(calls):
                t0 = perf()
                workload()
                latencies.append(perf() - t0)
            seconds = perf() - began
        return _summarize(settings, latencies, pauses.pauses, seconds)

    def optimize_gc_settings(
        self,
        workload: Callable[[], object] | None = None,
        *,
        candidates: Sequence[GcSettings] | None = None,
        calls: int = 2000,
        rounds: int = 3,
        min_gain: float = 0.03,
        min_share: float = 0.8,
        apply: bool = True,
        measure: Callable[[GcSettings], GcMeasurement] | None = None,
    ) -> GcTuningReport:
        """Measure candidates on ``workload`` (one request per call); apply the best that
        improves both p99 latency and throughput by ``min_gain`` (medians over rounds) and
        beats the current settings on both in at least ``min_share`` of the rounds; else
        keep the current settings.

        ``measure(settings)`` replaces running the workload (called once per setting and
        round; for simulations and tests). Settings are restored after each measurement, also on error.
        """
        if workload is None and measure is None:
            raise GCError(
                "optimize_gc_settings needs your workload: pass a callable that handles one "
                "request (it is called `calls` times per setting and round)"
            )
        if calls < 1 or rounds < 1 or not 0 <= min_gain < 1 or not 0 <= min_share <= 1:
            raise GCError(
                "calls and rounds must be at least 1, min_gain a fraction below 1 and "
                "min_share a fraction up to 1"
            )
        baseline_settings = GcSettings.current()
        options = (
            list(candidates) if candidates is not None else default_candidates(baseline_settings)
        )
        for option in options:
            option.validate()
        settings = [baseline_settings, *options]
        runs: list[list[GcMeasurement]] = [[] for _ in settings]
        for r in range(rounds):
            order = list(range(len(settings)))
            order = order[r % len(order) :] + order[: r % len(order)]  # rotate per round
            for i in order:
                if measure is not None:
                    runs[i].append(measure(settings[i]))
                else:
                    assert workload is not None
                    runs[i].append(self.measure(settings[i], workload, calls))
        merged = [_merge(m) for m in runs]
        consistent = [_consistent(runs[0], r, min_share) for r in runs[1:]]
        report = _decide(merged[0], merged[1:], min_gain, consistent)
        if apply and report.chosen is not None:
            self.apply(report.chosen)
            report = replace(report, applied=True)
        self.last_report = report
        logger.info("GC tuning: %s", report.reason)
        return report

    def apply(self, settings: GcSettings) -> None:
        """Use ``settings`` from now on (``gc.freeze()`` once, if asked)."""
        settings.validate()
        gc.set_threshold(*settings.thresholds)
        if settings.freeze:
            gc.freeze()
        self.applied = settings

    def restore(self) -> None:
        """Back to the thresholds in force when this optimizer was built (unfreezes)."""
        if self.applied is not None and self.applied.freeze:
            gc.unfreeze()
        gc.set_threshold(*self._original.thresholds)
        self.applied = None

    @staticmethod
    def freeze_after_preload() -> int:
        """``gc.freeze()`` for prefork servers: call in the master after importing the app,
        before the workers fork (gunicorn ``when_ready``); returns the objects frozen.

        Frozen objects are never scanned again, so collections in the workers are
        shorter and do not write to (copy) the parent's pages.
        """
        gc.freeze()
        collection.note_frozen()  # full passes from now on scan only newer objects
        return gc.get_freeze_count()

    # -- GC off for a block ---------------------------------------------------------------
    @contextlib.contextmanager
    def disable_gc_temporarily(self, warn_after: float | None = None) -> Iterator[None]:
        """No automatic collection inside the block; re-enabled on any exit (if it was on).

        Nestable and shared by threads: collection resumes when the last block ends. A
        hold longer than ``warn_after`` seconds (default ``hold_warning``) is logged while
        it lasts and counted in :attr:`long_holds`.
        """
        limit = self.hold_warning if warn_after is None else warn_after
        began = _hold.enter(limit)
        try:
            yield
        finally:
            _hold.exit(began)

    @property
    def long_holds(self) -> int:
        """How many GC-off holds lasted beyond their warning time (process-wide)."""
        return _hold.long_holds

    # -- collection -------------------------------------------------------------------------
    def register_cleanup_callback(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Run ``callback()`` before each optimized collection; returns an unregister function."""
        with self._lock:
            self._callbacks.append(callback)

        def unregister() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unregister

    def perform_optimized_collection(
        self,
        generation: int | None = None,
        *,
        enough: int | None = None,
        max_pause: float | None = None,
    ) -> CollectionResult:
        """Run the cleanup callbacks, then collect young to old up to ``generation``
        (default: all), stopping early once ``enough`` allocator bytes were freed.

        Young generations are cheap; the oldest is scanned only if still needed. With
        ``max_pause`` (seconds) no single pass is let run longer than predicted to fit:
        the oldest generation is skipped when it would not
        (:class:`~memlens.remedies.collection.ShortPauseCollector`).
        Callback errors are logged and counted, never raised.
        """
        n = len(gc.get_count())
        top = n - 1 if generation is None else generation
        if not 0 <= top < n:
            raise GCError(f"invalid generation {generation}: use 0 to {n - 1}")
        before = read_memory()
        with self._lock:
            callbacks = list(self._callbacks)
        errors = 0
        for callback in callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001 - one bad callback must not stop the rest
                errors += 1
                logger.exception("memlens cleanup callback %r failed", callback)
        garbage_before = len(gc.garbage)
        collected = 0
        pause = 0.0
        done: list[int] = []
        for gen in range(top + 1) if enough is not None or max_pause is not None else [top]:
            if (
                max_pause is not None
                and gen == n - 1
                and collection.predict_full_pause() > max_pause
            ):
                break  # the oldest generation would not fit the pause
            t0 = time.perf_counter()
            collected += gc.collect(gen)
            pause += time.perf_counter() - t0
            done.append(gen)
            if enough is not None:
                now = read_memory()
                freed = Reclaimed.between(before, now).allocator
                if freed is not None and freed >= enough:
                    break
        after = read_memory()
        return CollectionResult(
            generations=tuple(done),
            collected_objects=collected,
            uncollectable_objects=len(gc.garbage) - garbage_before,
            pause_seconds=pause,
            callbacks_run=len(callbacks),
            callback_errors=errors,
            before=before,
            after=after,
            reclaimed=Reclaimed.between(before, after),
        )

    # -- lifecycles ------------------------------------------------------------------------
    def monitor_object_lifecycle(
        self, obj: object, name: str, expected_lifetime: float | None = None
    ) -> weakref.ref[Any]:
        """Watch ``obj`` (without keeping it alive); returns a weak reference to it.

        With ``expected_lifetime`` seconds, an object still alive after that long is
        reported by :meth:`overdue_objects` (and logged once): it outlived its scope.
        """
        record = LifecycleRecord(name, type(obj).__name__, time.monotonic(), expected_lifetime)
        ident = id(obj)

        def died(_ref: weakref.ref[Any]) -> None:
            entry = self._alive.pop(ident, None)
            if entry is not None:
                entry[1].died = time.monotonic()
                self._finished.append(entry[1])

        try:
            ref = weakref.ref(obj, died)
        except TypeError:
            raise GCError(
                f"cannot watch {name!r}: {type(obj).__name__} objects cannot be weakly "
                "referenced (built-in int/str/tuple/list/dict); watch the object that owns it"
            ) from None
        with self._lock:
            if len(self._alive) >= self.max_tracked:
                oldest = next(iter(self._alive))
                del self._alive[oldest]
                self.lifecycle_dropped += 1
            self._alive[ident] = (ref, record)
        return ref

    def overdue_objects(self) -> list[LifecycleRecord]:
        """Watched objects alive past their expected lifetime, oldest first."""
        now = time.monotonic()
        out = [rec for _, rec in list(self._alive.values()) if rec.overdue(now)]
        for rec in out:
            if not rec.reported:
                rec.reported = True
                logger.warning(
                    "%s (%s) is still alive %.1f s after creation; expected at most %.1f s",
                    rec.name,
                    rec.type_name,
                    rec.age(now),
                    rec.expected_lifetime,
                )
        return sorted(out, key=lambda r: r.created)

    def lifecycle_stats(self) -> dict[str, dict[str, float]]:
        """Per name: alive, finished, overdue, mean and max lifetime of finished ones."""
        now = time.monotonic()
        out: dict[str, dict[str, float]] = {}
        for _, rec in list(self._alive.values()):
            s = out.setdefault(rec.name, _empty_lifecycle())
            s["alive"] += 1
            s["overdue"] += rec.overdue(now)
        for rec in list(self._finished):
            s = out.setdefault(rec.name, _empty_lifecycle())
            s["finished"] += 1
            s["total_lifetime"] += rec.age(now)
            s["max_lifetime"] = max(s["max_lifetime"], rec.age(now))
        for s in out.values():
            s["mean_lifetime"] = s.pop("total_lifetime") / s["finished"] if s["finished"] else 0.0
        return out


def _empty_lifecycle() -> dict[str, float]:
    return {"alive": 0, "finished": 0, "overdue": 0, "total_lifetime": 0.0, "max_lifetime": 0.0}


def _summarize(
    settings: GcSettings, latencies: list[float], pauses: list[float], seconds: float
) -> GcMeasurement:
    return GcMeasurement(
        settings=settings,
        calls=len(latencies),
        seconds=seconds,
        throughput=len(latencies) / seconds if seconds > 0 else 0.0,
        latency_p50=_quantile(latencies, 0.50),
        latency_p99=_quantile(latencies, 0.99),
        latency_max=max(latencies, default=0.0),
        collections=len(pauses),
        pause_p50=_quantile(pauses, 0.50),
        pause_p99=_quantile(pauses, 0.99),
        pause_max=max(pauses, default=0.0),
        pause_total=sum(pauses),
    )


def _merge(runs: list[GcMeasurement]) -> GcMeasurement:
    """Combine rounds: medians of the per-round figures, sums of counts."""
    if len(runs) == 1:
        return runs[0]

    def med(attr: str) -> float:
        return _quantile([getattr(m, attr) for m in runs], 0.5)

    return GcMeasurement(
        settings=runs[0].settings,
        calls=sum(m.calls for m in runs),
        seconds=sum(m.seconds for m in runs),
        throughput=med("throughput"),
        latency_p50=med("latency_p50"),
        latency_p99=med("latency_p99"),
        latency_max=max(m.latency_max for m in runs),
        collections=sum(m.collections for m in runs),
        pause_p50=med("pause_p50"),
        pause_p99=med("pause_p99"),
        pause_max=max(m.pause_max for m in runs),
        pause_total=sum(m.pause_total for m in runs),
    )


def _consistent(base: list[GcMeasurement], option: list[GcMeasurement], min_share: float) -> bool:
    """Did ``option`` beat ``base`` on both p99 and throughput in enough paired rounds?

    Medians alone can be carried by one lucky round on a noisy machine; a setting is
    only trusted if it wins round after round.
    """
    wins = sum(
        o.latency_p99 < b.latency_p99 and o.throughput > b.throughput for b, o in zip(base, option)
    )
    return wins >= math.ceil(min_share * len(base))


def _decide(
    base: GcMeasurement,
    options: list[GcMeasurement],
    min_gain: float,
    consistent: list[bool] | None = None,
) -> GcTuningReport:
    """The best option whose p99 latency and throughput both beat ``base`` by ``min_gain``
    (medians over rounds) and that won consistently round by round."""
    steady = consistent if consistent is not None else [True] * len(options)
    qualified = [
        m
        for m, ok in zip(options, steady)
        if ok
        and m.latency_p99 < base.latency_p99 * (1 - min_gain)
        and m.throughput > base.throughput * (1 + min_gain)
    ]
    if not qualified:
        worse = [m.settings.describe() for m in options if m.latency_p99 > base.latency_p99]
        reason = (
            f"kept {base.settings.describe()}: no candidate improved both p99 latency "
            f"({base.latency_p99 * 1e3:.3f} ms) and throughput ({base.throughput:.0f}/s) "
            f"by {min_gain:.0%} in most rounds"
        )
        if worse:
            reason += f"; p99 got worse with {', '.join(worse)}"
        return GcTuningReport(base, options, None, False, reason, min_gain)
    best = min(qualified, key=lambda m: (m.latency_p99, -m.throughput))
    reason = (
        f"{best.settings.describe()}: p99 {base.latency_p99 * 1e3:.3f} -> "
        f"{best.latency_p99 * 1e3:.3f} ms, throughput {base.throughput:.0f} -> "
        f"{best.throughput:.0f}/s"
    )
    return GcTuningReport(base, options, best.settings, False, reason, min_gain)
