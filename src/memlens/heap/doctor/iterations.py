"""Adaptive iterations: warm up, then checkpoint until the verdict is confident.

The engine is driven from outside — ``after_iteration()`` after each unit of work —
so the same logic serves ``doctor(step)``, ``watch()`` blocks and the pytest plugin.
Checkpoints are spaced ``every`` iterations; when there are too many, every other
one is dropped and the spacing doubles, so long runs keep equal spacing and a
bounded cost while the segments grow longer than any periodic clearing.

Growth is not believed at first sight: a cache whose bound lies beyond the first
window looks exactly like a leak there. Once growth is seen at iteration N, the
engine keeps observing (the doubling spacing widens the window) until iteration
``widen × N`` — while budget remains — and only a series still growing then is a
leak; one that levelled off in between reached a bound.

A step that keeps much memory per call cannot run that long: :class:`MemoryLimit`
(``pressure``) sees when the allowance would run out before the schedule ends. The
engine then checkpoints after every call and stops before the call that would pass
the limit (a memory-pressure stop). The memory limit ends the window as
``max_iterations`` does: a bound beyond it cannot be reached on this machine anyway.

When the doctor owns tracing, the schedule runs untraced (the *watch*) and tracing
starts only for a short *look* once growth was seen (see ``look``): the verdict's
series are the watch's, the allocation sites the look's.
"""

from __future__ import annotations

import contextvars
import gc
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

from memlens.heap.doctor import detect, growth, look, native
from memlens.heap.doctor.checkpoints import (
    Checkpoint,
    Reader,
    SiteKey,
    type_counts,
)
from memlens.heap.doctor.frozen import FrozenHeap
from memlens.heap.doctor.guard import BudgetClock
from memlens.heap.doctor.pressure import MemoryLimit
from memlens.heap.doctor.shallow import run_shallow
from memlens.heap.doctor.sites import CodeMap

if TYPE_CHECKING:
    from memlens.heap.doctor.diagnosis import Diagnosis


@dataclass
class Options:
    """Knobs of a diagnosis; the defaults suit steps of microseconds to ~100 ms."""

    max_iterations: int = 5000
    min_iterations: int = 0  # no verdict before this many step calls
    budget: float = 20.0  # seconds, warm-up and analysis included
    warmup: int | None = None  # None: decided from the budget and step time
    min_measured: int = 60  # iterations after warm-up before any verdict
    min_checkpoints: int = 12
    max_checkpoints: int = 24
    nframes: int = 20  # tracemalloc traceback depth
    horizon: int = 10_000  # iterations for "frees ≈ X" estimates
    samples_per_site: int = 5
    widen: float = 4.0  # growth first seen at N must still hold at widen × N
    max_memory: int | None = None  # bytes the steps may add to RSS (None: pressure.py)
    untraced_watch: bool = True  # watch untraced, trace only a short look (see ``look``)

    def validate(self) -> None:
        from memlens.core.errors import ConfigError

        if self.max_iterations < 10:
            raise ConfigError("max_iterations must be at least 10")
        if self.min_iterations < 0 or self.min_iterations > self.max_iterations:
            raise ConfigError("min_iterations must be between 0 and max_iterations")
        if not self.budget > 0:
            raise ConfigError("budget must be greater than zero seconds")
        if self.nframes < 1:
            raise ConfigError("nframes must be at least 1")
        if self.max_memory is not None and (
            isinstance(self.max_memory, bool)
            or not isinstance(self.max_memory, int)
            or self.max_memory <= 0
        ):
            raise ConfigError("max_memory must be a positive number of bytes")


MEMORY_PRESSURE = "memory pressure"
DENSE_NATIVE_FLOOR = 64 * 1024  # bytes per call


class Engine:
    """Counts iterations, takes checkpoints and decides when to stop."""

    def __init__(
        self,
        code: CodeMap,
        options: Options,
        progress: Callable[[Engine], None] | None = None,
    ) -> None:
        options.validate()
        self.progress = progress
        self.growth_seen_at = 0  # iteration where growth was first seen (0: not yet)
        self.contexts: dict[int, str] = {}  # the step thread's contextvars mapping
        self._context_copy: contextvars.Context | None = None
        self.code = code
        self.options = options
        self.own: set[int] = set()
        self.reader = Reader(code, self.own)
        self.checkpoints: list[Checkpoint] = []
        self.iterations = 0
        self.warmup = options.warmup if options.warmup is not None else -1
        self.every = 5
        self.next_at = self.warmup + self.every if self.warmup >= 0 else 0
        self.started = 0.0
        self.step_time = 0.0
        self.done = False
        self.stop_reason = ""
        self.signals: list[detect.Signal] = []
        self._started_tracing = False
        self._gc_enabled = gc.isenabled()
        self.malloc = native.malloc_available()
        self.rss_start = 0
        self.frozen = FrozenHeap()
        self.clock = BudgetClock()
        self.memory = MemoryLimit(options.max_memory)
        self.dense = False  # a checkpoint after every call (memory pressure)
        self.final_types: dict[str, int] = {}  # live objects per type at the end
        self.phase = look.TRACED
        self.watch_checkpoints: list[Checkpoint] = []  # the watch's, once the look began
        self.watch_signals: list[detect.Signal] = []
        self.watch_end = 0  # iteration where the watch ended (0: no look)
        self.watch_reason = ""
        self.look_every = 1
        self._look_calls = 0
        for obj in (
            self.own,
            self.checkpoints,
            self.reader.site_frames,
            self.reader._site_of_tb,
            self.code._cache,
            self.reader.last_garbage_ids,
        ):
            self.own.add(id(obj))
        self.own.add(id(self.watch_checkpoints))

    # -- lifecycle ---------------------------------------------------------------
    def begin(self) -> None:
        self.rss_start = native.rss()
        if self.options.untraced_watch and not tracemalloc.is_tracing():
            self.phase = look.WATCH
        else:
            self._start_tracing()
        self._freeze_and_start_clock()

    def _freeze_and_start_clock(self) -> None:
        # The heap that exists now is not the steps' doing: out of the GC's passes.
        run_shallow(self.frozen.freeze)
        self.reader.use_frozen(self.frozen.containers, self.frozen.active)
        self.reader.frozen_types = self.frozen.types
        self.own.add(id(self.frozen.containers))
        # The clock starts after the one-time set-up, which scales with the heap
        # that was already there, not with the steps.
        self.started = time.perf_counter()
        self.clock.start()
        self.memory.start()

    def _start_tracing(self) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(self.options.nframes)
            self._started_tracing = True
        run_shallow(self.reader.calibrate)

    def capture_context(self) -> None:
        """Remember the calling thread's contextvars mapping as a named root.

        Call on the step's thread. A copy of the context shares the thread's
        mapping (an immutable HAMT), so the mapping's id names what the thread
        state holds, which the GC cannot see.
        """
        copy = contextvars.copy_context()
        self._context_copy = copy
        self.own.add(id(copy))
        name = threading.current_thread().name
        self.contexts = {id(r): name for r in gc.get_referents(copy)}

    def end(self) -> None:
        self.reader.hold.release()
        self.thaw()
        if self._started_tracing:
            tracemalloc.stop()
            self._started_tracing = False

    @property
    def elapsed(self) -> float:
        """Budget seconds used since :meth:`begin` (see :class:`guard.BudgetClock`)."""
        return self.clock()

    @property
    def gc_enabled(self) -> bool:
        return self._gc_enabled

    def after_iteration(self) -> bool:
        """Record one finished unit of work; True when the doctor has enough."""
        if self.done:
            return True
        self.iterations += 1
        opts = self.options
        pressed = self.memory.observe(self.iterations)
        if self.phase == look.LOOK:
            return self._look_iteration(pressed)
        tight = pressed or self.memory.calls_left() < (opts.min_checkpoints + 1) * self.every
        if tight and self.phase == look.WATCH:
            # Too few calls left to watch first and look after: trace from here on,
            # with what was watched so far set aside (it has no sites).
            self.phase = look.TRACED
            self._start_tracing()
            self.checkpoints.clear()
        if self.warmup < 0:
            # Warm-up: long enough for lazy imports and first-call caches to settle.
            # A count of iterations, so that every run checkpoints at the same
            # iterations; only a step slow enough that the count would take a tenth
            # of the budget ends it by time (such a run is bounded by the budget
            # anyway).
            limit = max(3, min(100, opts.max_iterations // 10))
            # A step that would use up the memory allowance first warms up no
            # longer: every call it makes is needed as evidence.
            if tight or (
                self.iterations >= 3
                and (self.iterations >= limit or self.elapsed >= 0.1 * opts.budget)
            ):
                self.warmup = self.iterations
                self.step_time = self.elapsed / self.iterations
                self.next_at = self.iterations + self.every
                if tight:
                    # Every call counts, this one too; and the collection that
                    # grows holds only as many entries as there are calls.
                    self.every = 1
                    self.dense = True
                    self.reader.min_len = 1
                    self._checkpoint()
                    self.next_at = self.iterations + 1
            if pressed and not self.done:
                self._finish(MEMORY_PRESSURE)
            return self.done
        if self.warmup < 0 or self.iterations < self.warmup:
            return False
        if tight and not self.dense:
            # The allowance runs out before the next checkpoints would: take one
            # after every call from now on.
            self.every = 1
            self.dense = True
            self.next_at = min(self.next_at, self.iterations + 1)
        if self.iterations >= self.next_at:
            self._checkpoint()
            self.next_at = self.iterations + self.every
        if self.done:
            pass
        elif pressed:
            self._finish(MEMORY_PRESSURE)
        elif self.iterations >= self._iteration_limit:
            self._finish("max_iterations")
        elif self.iterations < opts.min_iterations:
            pass
        elif self.elapsed >= opts.budget * self._budget_share:  # room for the analysis
            self._finish("budget")
        return self.done

    @property
    def _iteration_limit(self) -> int:
        """The calls the schedule may make: while watching something that grows,
        the look's calls are kept out of ``max_iterations``."""
        if self.phase != look.WATCH or not self.signals:
            return self.options.max_iterations
        reserve = min(look.look_calls(look.MAX_SPACING), self.options.max_iterations // 10)
        return self.options.max_iterations - reserve

    @property
    def _budget_share(self) -> float:
        """The share of the budget the schedule may use (a watch leaves the look room)."""
        return 0.6 if self.phase == look.WATCH else 0.8

    def _look_iteration(self, pressed: bool) -> bool:
        """One call of the look: settle, then a checkpoint every ``look_every`` calls."""
        self._look_calls += 1
        k = self._look_calls - look.LOOK_SETTLE
        if k > 0 and k % self.look_every == 0:
            self._gc_enabled = gc.isenabled()
            try:
                cp = run_shallow(self.reader.read, self.iterations)
                self.memory.rebase(self.iterations)
                self.checkpoints.append(cp)
                self.own.add(id(cp))
                for d in (cp.site_bytes, cp.site_blocks, cp.container_lens, cp.garbage_site_bytes):
                    self.own.add(id(d))
            finally:
                self.reader.end_window()
            if self._may_settle():
                self.reader.settled.settle()
            if self.progress is not None:
                self.progress(self)
        # By 85 % of the budget with enough checkpoints for a trend, and with what it
        # has by 95 % (the hard deadline interrupts a step soon after the budget).
        used = self.elapsed / self.options.budget
        out_of_budget = (used >= 0.85 and len(self.checkpoints) >= 6) or used >= 0.95
        if (
            len(self.checkpoints) >= look.LOOK_CHECKPOINTS
            or pressed
            or out_of_budget
            or self.iterations >= self.options.max_iterations
        ):
            self._end_look()
        return self.done

    def _begin_look(self, reason: str) -> None:
        """The watch saw growth: trace a few calls to find where it is allocated."""
        self.watch_reason = reason
        self.watch_end = self.iterations
        self.watch_signals = list(self.signals)
        self.watch_checkpoints[:] = self.checkpoints
        self.checkpoints = []
        self.own.add(id(self.checkpoints))
        self.look_every = look.spacing(self.watch_signals)
        self._look_calls = 0
        self.phase = look.LOOK
        self._start_tracing()

    def _end_look(self) -> None:
        look_signals = self._evaluate() if len(self.checkpoints) >= 2 else []
        self.signals = look.merge(self.watch_signals, look_signals, self.checkpoints)
        self._done(self.watch_reason)

    # -- internals ----------------------------------------------------------------
    def _checkpoint(self) -> None:
        self._gc_enabled = gc.isenabled()
        # The collection, then the interpreter's blocks, read before the doctor makes
        # anything, here on this thread; what the checkpoint still holds at
        # ``end_window`` is its own.
        Reader.open_window(self.reader)
        try:
            self._read_and_decide()
        finally:
            Reader.end_window(self.reader)
        if self._may_settle():
            self.reader.settled.settle()

    def _may_settle(self) -> bool:
        """Whether the heap may be settled until the next checkpoint (see
        ``settled``): in the watch and the look that follows it, with the program's
        collector on and nothing else frozen."""
        return (
            self.phase in (look.WATCH, look.LOOK)
            and not self.done
            and self.reader.program_gc
            and not self.frozen.active
            and not self.frozen.program_frozen
        )

    def _read_and_decide(self) -> None:
        """The checkpoint's readings and what they decide (inside its window)."""
        cp = run_shallow(self.reader.read, self.iterations, True)
        # What the reading itself left resident is not the steps' rate.
        self.memory.rebase(self.iterations)
        self.checkpoints.append(cp)
        self.own.add(id(cp))
        self.own.add(id(self.reader.baseline_lens))
        for d in (cp.site_bytes, cp.site_blocks, cp.container_lens, cp.garbage_site_bytes):
            self.own.add(id(d))
        if len(self.checkpoints) > self.options.max_checkpoints:
            start = 0 if len(self.checkpoints) % 2 else 1
            self.checkpoints[:] = self.checkpoints[start::2]
            self.every *= 2
        if (
            len(self.checkpoints) >= self.options.min_checkpoints
            and self.iterations - self.warmup >= self.options.min_measured
        ):
            self.signals = self._evaluate()
            growing = any(s.state == growth.GROWING for s in self.signals)
            if growing and not self.growth_seen_at:
                self.growth_seen_at = self.iterations
                self._widen()
            ready = self.iterations >= self.options.min_iterations
            if growing and ready and self.iterations >= self.options.widen * self.growth_seen_at:
                self._finish("confident: leak")
            elif not self.signals and ready:
                self._finish("confident: no growth")
        if self.progress is not None:
            self.progress(self)
        del cp
        self._release_frozen()

    def _release_frozen(self) -> None:
        """Once the steps' heap is as big as the one frozen at the start, give that
        back to the collector (inside a checkpoint's window, so that what the doctor
        frees with it stays accounted).

        The frozen heap saves each full collection a pass over it; a window then
        needs two passes over the rest (see ``gcpasses``), and with nothing frozen
        one pass over all. Past this point one pass over everything costs less.
        """
        if not self.frozen.active or self.done or self.phase == look.LOOK:
            return
        if self.reader.listed < self.frozen.count:
            return
        self.reader.use_frozen([], False)
        self.frozen.release()

    @property
    def first_checkpoint(self) -> Checkpoint | None:
        """The first checkpoint of the schedule (the watch's, after a look)."""
        cps = self.watch_checkpoints or self.checkpoints
        return cps[0] if cps else None

    def _evaluate(self) -> list[detect.Signal]:
        # Under memory pressure a checkpoint follows every call, so the doctor's own
        # few kilobytes per checkpoint would read as native growth per call: there,
        # native growth below DENSE_NATIVE_FLOOR or a hundredth of the resident
        # growth per call is not told apart.
        floor = 0.0
        if self.dense:
            floor = max(DENSE_NATIVE_FLOOR, 0.01 * self.memory.grown / max(1, self.iterations))
        return detect.evaluate(
            self.checkpoints,
            self.malloc,
            not self._gc_enabled,
            self.reader.baseline_lens,
            native_floor=floor,
            blocks=self.phase == look.WATCH,
        )

    def _widen(self) -> None:
        """Space checkpoints so that about ``min_checkpoints`` more reach ``widen × N``.

        Checkpoints stay equally spaced: the spacing grows by a power of two and the
        existing checkpoints are thinned to it, newest kept.
        """
        # By iteration count only (not by how far the budget seems to reach), so
        # that a loaded machine checkpoints at the same iterations as a quiet one.
        # A run the budget cuts short of the target ends inconclusive (see
        # ``window_short``), whatever its spacing.
        target = min(self.options.widen * self.iterations, float(self.options.max_iterations))
        # Nor beyond the call where the memory allowance runs out.
        target = min(target, self.iterations + self.memory.calls_left())
        wanted = (target - self.iterations) / max(1, self.options.min_checkpoints)
        factor = 1
        while self.every * factor * 2 <= wanted:
            factor *= 2
        if factor == 1:
            return
        self.checkpoints[:] = self.checkpoints[::-1][::factor][::-1]
        self.every *= factor
        self.next_at = self.iterations + self.every

    def thaw(self) -> None:
        """Give the heap frozen at :meth:`begin` back to the GC (before any analysis
        walks the whole heap)."""
        self.reader.settled.stop()
        self.reader.use_frozen([], False)
        self.frozen.thaw()

    def _finish(self, reason: str) -> None:
        if len(self.checkpoints) >= 6:
            self.signals = self._evaluate()
        if self.phase == look.WATCH and self.signals and reason != "stopped by caller":
            self._begin_look(reason)
            return
        self._done(reason)

    def _done(self, reason: str) -> None:
        self.stop_reason = reason
        self.done = True
        if self.frozen.active or self.frozen.released:
            # Live objects per type now, counted while the old heap is still set
            # aside (its counts are known): the sampling compares it to the baseline.
            self.final_types = run_shallow(self._type_counts_now)
        self.thaw()

    def _type_counts_now(self) -> dict[str, int]:
        counts = type_counts(gc.get_objects())
        for name, n in self.frozen.types.items():
            counts[name] = counts.get(name, 0) + n
        return counts

    def sampled_objects(self, sites: Iterable[SiteKey]) -> list[object]:
        """Objects at these sites found from sampled blocks (a sampled run only, see
        ``sampled.py``; tracemalloc finds them by their tracebacks)."""
        return []

    def annotate(self, diagnosis: Diagnosis) -> None:
        """Add what this kind of run adds to its diagnosis (``sampled.py``)."""

    def exact_tracing(self) -> AbstractContextManager[object]:
        """Exact tracing for a short re-run of the step (tracemalloc is on already
        here; a sampled run turns it on for the duration)."""
        return nullcontext()

    @property
    def window_target(self) -> int:
        """The iteration growth first seen must still hold at (0: no growth seen)."""
        if not self.growth_seen_at:
            return 0
        return int(self.options.widen * self.growth_seen_at)

    @property
    def memory_pressure(self) -> bool:
        """True when the run stopped before a call that would pass the memory limit."""
        return self.stop_reason == MEMORY_PRESSURE

    @property
    def window_short(self) -> bool:
        """If growing signals remain: the run ended (budget, ``max_iterations``, a
        caller) before the window widened to ``widen`` times where growth was first
        seen, so a bound beyond this point cannot be ruled out."""
        if self.memory_pressure:
            # Like --max-iterations, the memory limit is the end of the window: a
            # bound the memory cannot reach is no bound for this program.
            return False
        watched = self.watch_end or self.iterations  # the look's calls are no window
        seen = self.growth_seen_at or watched  # growth first seen at the end
        # ``--max-iterations`` is the user's own limit on the window (and a count,
        # so the verdict stays the same from run to run); the budget is not.
        limit = self.options.max_iterations
        if self.watch_end:
            limit -= min(look.look_calls(look.MAX_SPACING), limit // 10)
        target = min(self.options.widen * seen, limit)
        return watched < target
