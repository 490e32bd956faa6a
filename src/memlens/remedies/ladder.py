"""The recovery ladder: cheap remedies first, each measured, stopping once memory is back down.

When a leak alert or the critical threshold fires (opt-in, see
:meth:`RecoveryLadder.attach`), the ladder runs its steps in order of cost:

1. ``clear caches`` — every registered memlens cache, plus clearers you register
   (``functools.lru_cache``'s ``cache_clear``, a dict's ``clear``);
2. ``compress context`` — hooks that shrink long-term context memory (the context
   memory manager registers one; any callable works);
3. ``gc.collect`` — young generations first, the oldest only if still needed and only
   if its pause fits ``gc_max_pause`` (see :mod:`memlens.remedies.collection`);
4. ``malloc_trim`` — gives the allocator's free pages back to the OS, on a thread;
5. ``recycle`` — a graceful-recycle hook: the server finishes in-flight requests and
   exits so its master replaces the worker (see :mod:`memlens.remedies.recycle`).

Each step reports what it reclaimed (RSS, allocator bytes in use, traced bytes) and
how long it took; the ladder stops as soon as RSS is under ``target_bytes`` (the
monitor's warning threshold when attached). Triggered runs happen on a
``memlens-recovery`` thread, one at a time, at most once per ``min_interval``; work
that would hold the GIL for long is sliced so other threads (an event loop) keep
running between slices. The last runs are kept in :attr:`RecoveryLadder.history`.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from memlens.core.errors import ConfigError
from memlens.core.units import format_bytes
from memlens.remedies import registry
from memlens.remedies.allocator import malloc_trim, trim_available
from memlens.remedies.collection import ShortPauseCollector
from memlens.remedies.readings import MemoryReading, Reclaimed, read_memory

logger = logging.getLogger("memlens.remedies")

Action = Callable[[], object]

CLEAR_CACHES, COMPRESS_CONTEXT, GC_COLLECT, MALLOC_TRIM, RECYCLE = (
    "clear caches",
    "compress context",
    "gc.collect",
    "malloc_trim",
    "recycle",
)


@dataclass(frozen=True)
class StepResult:
    """One rung: what it did, what it reclaimed and how long it took."""

    step: str
    ran: bool
    detail: str
    before: MemoryReading
    after: MemoryReading
    reclaimed: Reclaimed
    duration: float  # seconds, wall time of the whole step
    longest_hold: float  # seconds, the longest single slice that held the GIL (estimate)
    error: str | None = None
    started: float = 0.0  # time.perf_counter() when the step began

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LadderRun:
    """One run of the ladder, from trigger to the step that brought memory down."""

    reason: str
    started: float  # UTC epoch seconds
    target_bytes: int | None
    steps: list[StepResult] = field(default_factory=list)
    outcome: str = ""
    duration: float = 0.0
    before: MemoryReading | None = None
    after: MemoryReading | None = None

    @property
    def reclaimed(self) -> Reclaimed | None:
        if self.before is None or self.after is None:
            return None
        return Reclaimed.between(self.before, self.after)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        reclaimed = self.reclaimed
        data["reclaimed"] = reclaimed.to_dict() if reclaimed is not None else None
        return data

    def describe(self) -> str:
        reclaimed = self.reclaimed
        got = format_bytes(reclaimed.rss) if reclaimed is not None else "?"
        steps = ", ".join(
            f"{s.step} {format_bytes(s.reclaimed.rss, signed=True)}" for s in self.steps if s.ran
        )
        return f"recovery ({self.reason}): {got} RSS reclaimed [{steps}]; {self.outcome}"


class StepCounters:
    """Per-step counters of a ladder, exported as ``memlens_recovery_step_*{recovery_step=…}``
    (Prometheus) and ``memlens.recovery_step.*`` (OpenTelemetry)."""

    kind = "recovery_step"

    def __init__(self, name: str) -> None:
        self.name = name
        self.runs = self.skipped = self.errors = self.stopped = 0
        self.reclaimed = self.allocator_reclaimed = 0
        self.duration = self.longest_hold = 0.0

    def record(self, result: StepResult, stopped: bool) -> None:
        if not result.ran and result.error is None:
            self.skipped += 1
            return
        self.runs += 1
        self.errors += result.error is not None
        self.stopped += stopped
        self.reclaimed += max(0, result.reclaimed.rss)
        self.allocator_reclaimed += max(0, result.reclaimed.allocator or 0)
        self.duration += result.duration
        self.longest_hold = result.longest_hold

    def metrics(self) -> dict[str, float]:
        return {m.key: float(getattr(self, m.key)) for m in registry.METRICS[self.kind]}

    def _after_fork(self) -> None:
        pass  # plain counters, no lock


@dataclass
class _Step:
    name: str
    cost: int
    action: Callable[[], tuple[str, float]]  # -> (detail, longest hold)
    available: Callable[[], str | None]  # None when it can run, else why not
    counters: StepCounters = field(init=False)

    def __post_init__(self) -> None:
        self.counters = StepCounters(self.name)
        registry.register(self.counters)  # held by this step: gone with it


def _describe(result: object) -> str:
    """A hook's result in a few words (a context FitReport says the tokens it saved)."""
    saved = getattr(result, "tokens_saved", None)
    if isinstance(saved, int):
        return f"{saved} tokens saved"
    return "done" if result is None else repr(result)[:80]


def _yield_gil() -> None:
    time.sleep(0)  # lets a waiting thread (the event loop) take the GIL


# While the ladder runs, CPython hands the GIL to a waiting thread after this long
# (default 5 ms): the event loop waits at most about this for each of its turns.
SWITCH_INTERVAL = 0.0005


class RecoveryLadder:
    """Ordered, measured recovery steps (see the module docstring)."""

    name = "recovery"
    kind = "recovery"

    def __init__(
        self,
        *,
        target_bytes: int | None = None,
        min_interval: float = 60.0,
        history: int = 50,
        reader: Callable[[], MemoryReading] = read_memory,
        gc_max_pause: float | None = 0.005,
        gc_refreeze: bool = False,
    ) -> None:
        if min_interval < 0 or history < 1:
            raise ConfigError("min_interval must be >= 0 and history >= 1")
        if gc_max_pause is not None and gc_max_pause <= 0:
            raise ConfigError("gc_max_pause must be positive seconds, or None for no bound")
        # The GC step's collector: every pause within gc_max_pause (None: a full collection).
        self.collector = ShortPauseCollector(gc_max_pause, refreeze=gc_refreeze)
        self.target_bytes = target_bytes
        self.min_interval = min_interval
        self.reader = reader
        self.history: deque[LadderRun] = deque(maxlen=history)
        self.runs = 0
        self.suppressed = 0
        self.reclaimed_total = 0
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._last_end = -float("inf")
        self._thread: threading.Thread | None = None
        self._clearers: list[Action] = []
        self._compressors: list[Action] = []
        self._recycle: Action | None = None
        self._current_target: int | None = None  # of the run under way
        self._steps: list[_Step] = [
            _Step(CLEAR_CACHES, 10, self._clear_caches, lambda: None),
            _Step(COMPRESS_CONTEXT, 20, self._compress, self._compress_available),
            _Step(GC_COLLECT, 30, self._collect, lambda: None),
            _Step(MALLOC_TRIM, 40, self._trim, self._trim_available),
            _Step(RECYCLE, 100, self._do_recycle, self._recycle_available),
        ]
        registry.register(self)

    # -- registration ---------------------------------------------------------------------
    def register_cache(self, cache: Any) -> Callable[[], None]:
        """Clear ``cache`` in the first step: an object with ``clear()``/``cache_clear()``
        or a callable. memlens's own caches are cleared without registering."""
        clear = getattr(cache, "cache_clear", None) or getattr(cache, "clear", None) or cache
        if not callable(clear):
            raise ConfigError(f"cannot clear {cache!r}: give a callable or an object with clear()")
        return self._add(self._clearers, clear)

    def register_context_compressor(self, compress: Action) -> Callable[[], None]:
        """Run ``compress()`` in the second step (e.g. ``ContextMemory``'s compaction)."""
        return self._add(self._compressors, compress)

    def set_recycle_hook(self, hook: Action | None) -> None:
        """The last resort: ``hook()`` asks the server to recycle this worker gracefully."""
        self._recycle = hook

    def add_step(self, name: str, action: Action, cost: int) -> None:
        """Add your own step; ``cost`` orders it (built-ins: 10, 20, 30, 40, recycle 100)."""
        if any(s.name == name for s in self._steps):
            raise ConfigError(f"a recovery step named {name!r} exists already")

        def run() -> tuple[str, float]:
            began = time.perf_counter()
            result = action()
            return (str(result) if result is not None else "done"), time.perf_counter() - began

        with self._lock:
            self._steps.append(_Step(name, cost, run, lambda: None))
            self._steps.sort(key=lambda s: s.cost)

    def remove_step(self, name: str) -> None:
        with self._lock:
            for step in self._steps:
                if step.name == name:
                    registry.unregister(step.counters)
            self._steps = [s for s in self._steps if s.name != name]

    def step_counters(self) -> dict[str, dict[str, float]]:
        """Per step, in order: runs, skips, errors, stops, bytes reclaimed, time, longest hold."""
        with self._lock:
            steps = sorted(self._steps, key=lambda s: s.cost)
        return {s.name: s.counters.metrics() for s in steps}

    @property
    def steps(self) -> list[str]:
        """Step names in the order they run."""
        return [s.name for s in sorted(self._steps, key=lambda s: s.cost)]

    def _add(self, where: list[Action], item: Action) -> Callable[[], None]:
        with self._lock:
            where.append(item)

        def remove() -> None:
            with self._lock:
                if item in where:
                    where.remove(item)

        return remove

    # -- the steps -----------------------------------------------------------------------
    def _clear_caches(self) -> tuple[str, float]:
        longest = 0.0
        dropped = 0
        with self._lock:
            extra = list(self._clearers)
        for cache in registry.instruments("cache"):
            began = time.perf_counter()
            dropped += int(cache.clear())  # type: ignore[attr-defined]
            # A memo clears in slices and knows its longest; else the whole call held it.
            held = getattr(cache, "last_clear_pause", None)
            longest = max(longest, held if held is not None else time.perf_counter() - began)
            _yield_gil()
        for clear in extra:
            began = time.perf_counter()
            result = clear()
            dropped += result if isinstance(result, int) else 0
            longest = max(longest, time.perf_counter() - began)
            _yield_gil()
        return f"{dropped} entries dropped from {len(extra)} registered and memlens caches", longest

    def _compress_available(self) -> str | None:
        return None if self._compressors else "no context compressor registered"

    def _compress(self) -> tuple[str, float]:
        with self._lock:
            hooks = list(self._compressors)
        results = []
        longest = 0.0
        for hook in hooks:
            began = time.perf_counter()
            results.append(hook())
            longest = max(longest, time.perf_counter() - began)
            _yield_gil()
        return f"{len(hooks)} compressor(s): " + "; ".join(map(_describe, results)), longest

    def _collect(self) -> tuple[str, float]:
        result = self.collector.collect(stop=self._below_target)
        return result.describe(), result.longest_pause

    def _trim_available(self) -> str | None:
        return None if trim_available() else "malloc_trim is unavailable (not glibc)"

    def _trim(self) -> tuple[str, float]:
        released, seconds = malloc_trim(0, timeout=30.0)
        # The GIL is released while glibc trims; only malloc calls on the arena wait.
        return ("pages released" if released else "nothing to release"), 0.0

    def _recycle_available(self) -> str | None:
        if self._recycle is None:
            return "no recycle hook set"
        if self._current_target is None:
            return "no target: recycling only runs when memory stays above a threshold"
        return None

    def _do_recycle(self) -> tuple[str, float]:
        assert self._recycle is not None
        began = time.perf_counter()
        result = self._recycle()
        return (str(result) if result is not None else "recycle requested"), (
            time.perf_counter() - began
        )

    # -- running -------------------------------------------------------------------------
    def _below_target(self) -> bool:
        target = self._current_target
        return target is not None and self.reader().rss < target

    def run(self, reason: str = "manual", target_bytes: int | None = None) -> LadderRun:
        """Run the ladder now, in this thread; returns the run (also kept in ``history``)."""
        target = target_bytes if target_bytes is not None else self.target_bytes
        run = LadderRun(reason, time.time(), target)
        began = time.perf_counter()
        self._current_target = target
        self._running.set()
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, SWITCH_INTERVAL))
        try:
            run.before = self.reader()
            if target is not None and run.before.rss < target:
                run.outcome = f"already below the target ({format_bytes(target)}): nothing to do"
            with self._lock:
                steps = sorted(self._steps, key=lambda s: s.cost)
            for step in steps if not run.outcome else []:
                if step.name == RECYCLE and step.available() is None:
                    # The process may be gone before the run ends: say why now.
                    run.outcome = "recycling: the cheaper steps left memory above the target"
                    logger.warning("%s", run.describe())
                    run.outcome = ""
                result = self._run_step(step)
                run.steps.append(result)
                below = result.ran and target is not None and result.after.rss < target
                step.counters.record(result, stopped=below)
                if below and target is not None:
                    run.outcome = f"below the target ({format_bytes(target)}) after {step.name}"
                    break
                if result.ran and step.name == RECYCLE:
                    run.outcome = "recycle requested: the worker exits after in-flight work"
                    break
            if not run.outcome:
                run.outcome = (
                    "all steps ran; still above the target"
                    if target is not None
                    else "all steps ran (no target set)"
                )
            run.after = self.reader()
        finally:
            sys.setswitchinterval(switch)
            self._current_target = None
            self._running.clear()
        run.duration = time.perf_counter() - began
        reclaimed = run.reclaimed
        with self._lock:
            self.runs += 1
            self.reclaimed_total += max(0, reclaimed.rss) if reclaimed is not None else 0
            self.history.append(run)
            self._last_end = time.monotonic()
        logger.warning("%s", run.describe())
        return run

    def _run_step(self, step: _Step) -> StepResult:
        before = self.reader()
        why_not = step.available()
        if why_not is not None:
            return StepResult(step.name, False, why_not, before, before, Reclaimed(0, 0, 0), 0, 0)
        began = time.perf_counter()
        error = None
        detail, longest = "", 0.0
        try:
            detail, longest = step.action()
        except Exception as exc:  # noqa: BLE001 - one failing step must not stop recovery
            error = f"{type(exc).__name__}: {exc}"
            logger.exception("memlens recovery step %r failed", step.name)
        duration = time.perf_counter() - began
        after = self.reader()
        return StepResult(
            step.name,
            error is None,
            detail or (error or ""),
            before,
            after,
            Reclaimed.between(before, after),
            duration,
            longest,
            error,
            began,
        )

    def trigger(self, reason: str, target_bytes: int | None = None) -> bool:
        """Run on the ``memlens-recovery`` thread unless a run is under way or the last one
        ended less than ``min_interval`` ago; returns whether a run was started."""
        with self._lock:
            busy = self._thread is not None and self._thread.is_alive()
            if busy or time.monotonic() - self._last_end < self.min_interval:
                self.suppressed += 1
                return False
            self._thread = threading.Thread(
                target=self.run, args=(reason, target_bytes), name="memlens-recovery", daemon=True
            )
            self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a triggered run to finish; ``False`` on timeout."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    @property
    def running(self) -> bool:
        return self._running.is_set()

    # -- the monitor -------------------------------------------------------------------------
    def attach(
        self, monitor: Any, *, on_leak: bool = True, on_critical: bool = True
    ) -> Callable[[], None]:
        """Run (on its thread) when ``monitor`` raises a leak alert or crosses the critical
        threshold; the target defaults to the monitor's warning threshold. Returns a
        function that detaches. Events are matched by name, so any monitor with the
        same events works."""
        if self.target_bytes is None:
            self.target_bytes = int(monitor.config.warning_bytes)

        def on_event(event: Any) -> None:
            kind = type(event).__name__
            if on_leak and kind == "LeakSuspected":
                self.trigger(f"leak alert {event.leak_id} in {event.component}")
            elif (
                on_critical
                and kind == "PerformanceThresholdExceeded"
                and getattr(event, "level", "") == "critical"
            ):
                self.trigger(f"critical threshold: RSS {format_bytes(event.value)}")

        unsubscribe: Callable[[], None] = monitor.subscribe(on_event)
        return unsubscribe

    # -- exporting ---------------------------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        last = self.history[-1] if self.history else None
        last_reclaimed = last.reclaimed if last is not None else None
        return {
            "runs": float(self.runs),
            "suppressed": float(self.suppressed),
            "reclaimed": float(self.reclaimed_total),
            "last_reclaimed": float(last_reclaimed.rss) if last_reclaimed is not None else 0.0,
        }

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._thread = None
