"""The monitor's view of the Python heap: components and growing allocation sites.

Two sources: exact tracemalloc (the ``tracemalloc`` backend: ``debug`` mode) or the
sampling tracer (the ``sampler`` backend: ``standard`` and ``advanced`` modes; see
:mod:`memlens.heap.sampler`), whose readings are estimates at a fraction of the
cost. When both are enabled tracemalloc wins. At the snapshot cadence it sums the
source per user-code site and per registered component and keeps only those sums
(one small entry per line of code), never the traces, so its memory does not grow
with the heap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from memlens.core.config import MONITOR_SAMPLER_BUDGET
from memlens.core.errors import NotFoundError
from memlens.core.session import AllocationSite, ComponentUsage
from memlens.heap.frames import ComponentMap
from memlens.heap.heap_meter import (
    ComponentTracker,
    HeapMeter,
    component_totals_of_groups,
    sites_of_groups,
)
from memlens.heap.sampler import AllocationSampler

FIELD_PREFIX = "component."


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline


#: Snapshots may take at most this share of the time between them: after one that
#: took ``d`` seconds the next waits at least ``d / SNAPSHOT_BUDGET`` (copying the
#: traces holds the GIL, worker thread or not: seconds on a big heap).
SNAPSHOT_BUDGET = 0.10

#: ``on_skip(cause, reason)``: told of every snapshot not taken or not used.
SkipListener = Callable[[str, str], None]


# The allocator hooks are process-wide, so every monitor in a process shares one
# sampler: the first to start installs it, the last to stop removes it.
_shared_lock = threading.Lock()
_shared: AllocationSampler | None = None
_shared_users = 0


def _acquire_sampler(depth: int, budget: float | None = None) -> AllocationSampler:
    """The process's shared sampler; the first monitor to start it sets its depth and
    cost budget (``MONITOR_SAMPLER_BUDGET`` unless given)."""
    global _shared, _shared_users
    with _shared_lock:
        if _shared is None:
            sampler = AllocationSampler(
                depth=depth, budget=MONITOR_SAMPLER_BUDGET if budget is None else budget
            )
            sampler.start()  # RuntimeError if a Profiler(sample=...) owns the hooks
            _shared = sampler
        _shared_users += 1
        return _shared


def _release_sampler() -> None:
    global _shared, _shared_users
    with _shared_lock:
        _shared_users = max(0, _shared_users - 1)
        if _shared_users == 0 and _shared is not None:
            sampler, _shared = _shared, None
            sampler.stop()


class HeapWatch:
    """Periodic tracemalloc snapshots condensed to sites and component totals."""

    def __init__(
        self,
        depth: int,
        components: Mapping[str, str] | None = None,
        tracing: bool = False,
        sampling: bool = False,
        sampler_budget: float | None = None,
    ) -> None:
        self._prefixes: dict[str, str] = dict(components or {})
        self.heap = HeapMeter(depth, self._prefixes)
        self.tracing_wanted = tracing
        self.depth = depth
        self.sampler_budget = sampler_budget
        self.sampling_wanted = sampling and not tracing
        self.sampler: AllocationSampler | None = None
        self.sampler_error: str | None = None
        self.tracker = ComponentTracker()
        self.baseline: dict[tuple[str, int], tuple[int, int]] | None = None
        self.current: dict[tuple[str, int], tuple[int, int]] = {}
        self.snapshots = 0
        self.last_snapshot_t: float | None = None
        self._lock = threading.Lock()
        # Snapshots taken off the sampling thread (take_in_background).
        self.skipped = 0  # due but not taken (see _skip for the causes)
        self.cut_short = 0  # dropped: processing ran past its time box
        self.last_skip: dict[str, Any] | None = None
        self.last_duration = 0.0  # seconds the latest snapshot took (wall clock)
        self.on_skip: SkipListener | None = None
        self._skip_told = False  # the current stretch of skips was reported already
        self._worker: threading.Thread | None = None
        self._finished: dict[str, float] | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        if self.tracing_wanted:
            self.heap.start()
        if self.sampling_wanted and self.sampler is None:
            try:
                self.sampler = _acquire_sampler(self.depth, self.sampler_budget)
                self.sampler_error = None
            except RuntimeError as exc:  # a Profiler(sample=...) owns the hooks: say so
                self.sampler_error = str(exc)

    def stop(self) -> None:
        if self.tracing_wanted:
            self.heap.stop()
        if self.sampler is not None:
            self.sampler = None
            try:
                _release_sampler()
            except RuntimeError as exc:  # tracemalloc was started on top of it
                self.sampler_error = str(exc)

    @property
    def tracing(self) -> bool:
        return self.tracing_wanted and self.heap.tracing

    @property
    def sampling(self) -> bool:
        """True while the sampling tracer provides the sites (and tracemalloc does not)."""
        return self.sampler is not None and self.sampler.running

    @property
    def source(self) -> str:
        """Where sites come from: ``tracemalloc``, ``sampler`` (estimates) or ``off``."""
        if self.tracing:
            return "tracemalloc"
        if self.sampling:
            assert self.sampler is not None
            return "sampler" if self.sampler.backend == "sampling" else "tracemalloc"
        return "off"

    def reset(self) -> None:
        """Forget history (after fork: the child starts its own)."""
        with self._lock:
            self.tracker = ComponentTracker()
            self.baseline = None
            self.current = {}
            self.last_snapshot_t = None
            self._worker = None  # a forked child has no worker thread
            self._finished = None
            self.skipped = self.cut_short = 0
            self.last_skip = None
            self.last_duration = 0.0
            self._skip_told = False

    def defer_first_snapshot(self) -> None:
        """Wait one snapshot interval before the first snapshot (after fork).

        A snapshot holds the GIL for as long as it copies the traces (seconds on a
        big heap), so taking one the moment a forked child starts its sampling
        thread would stall the child's main thread right when ``os.fork()`` returns.
        """
        self._deferred = True

    # -- components ----------------------------------------------------------------
    def register(self, name: str, prefix: str) -> None:
        """Attribute files of module/package ``prefix`` (or a path prefix) to ``name``."""
        if not name or not prefix:
            raise ValueError("a component needs a name and a module or path prefix")
        self._prefixes[name] = prefix
        # ComponentMap caches lookups; rebuild it rather than mutate it under readers.
        self.heap.components = ComponentMap(self._prefixes)

    @property
    def component_names(self) -> list[str]:
        return sorted(self._prefixes)

    def usage(self, name: str | None = None) -> dict[str, ComponentUsage]:
        """Current, peak and growth (bytes) per component, from the latest snapshot."""
        with self._lock:
            seen = {u.name: u for u in self.tracker.usage()}
        names = [name] if name is not None else self.component_names
        out = {}
        for n in names:
            if n not in self._prefixes:
                raise NotFoundError(
                    f"no component {n!r}: registered components are "
                    + (", ".join(self.component_names) or "none")
                )
            out[n] = seen.get(n, ComponentUsage(name=n))
        return out

    # -- snapshots -----------------------------------------------------------------
    def due(self, t: float, interval: float) -> bool:
        """Whether to snapshot now; a due snapshot that is not taken is reported
        (:meth:`_skip`) once per stretch."""
        if getattr(self, "_deferred", False) and self.last_snapshot_t is None:
            self._deferred = False
            self.last_snapshot_t = t  # counts as taken: the next one is an interval away
            if self.tracing or self.sampling:  # (no snapshots in this mode: nothing skipped)
                self._skip(
                    t,
                    "fork",
                    f"the first snapshot after fork waits one interval ({interval:g} s), "
                    "so os.fork() returns at once",
                    once=True,
                )
            return False
        if self.last_snapshot_t is not None and t - self.last_snapshot_t < interval:
            return False
        if not (self.tracing or self.sampling):
            if self.tracing_wanted:
                reason = "tracemalloc is not tracing (stopped outside memlens)"
                self._skip(t, "tracing_off", reason, once=True)
            elif self.sampling_wanted and self.sampler_error:
                reason = f"the sampling tracer is unavailable: {self.sampler_error}"
                self._skip(t, "sampler", reason, once=True)
            return False
        wait = self.last_duration / SNAPSHOT_BUDGET
        if self.last_snapshot_t is not None and t - self.last_snapshot_t < wait:
            self._skip(
                t,
                "budget",
                f"the last snapshot took {self.last_duration:.2f} s; the next waits "
                f"{wait:.0f} s (not {interval:g} s) to keep snapshots under "
                f"{SNAPSHOT_BUDGET:.0%} of the time",
                once=True,
            )
            return False
        return True

    def _skip(self, t: float, cause: str, reason: str, once: bool = False) -> None:
        """Count a snapshot not taken (``cut_short``: taken, not used) and tell
        :attr:`on_skip`. ``once``: one report per stretch, until a snapshot is taken.

        Causes: ``fork`` (a forked child's first one waits an interval), ``budget``
        (the last one was slow), ``tracing_off``, ``sampler`` (unavailable), ``busy``
        (the previous one still being processed), ``cut_short`` (past its time box).
        """
        if once:
            if self._skip_told:
                return
            self._skip_told = True
        if cause == "cut_short":
            self.cut_short += 1
        else:
            self.skipped += 1
        what = "cut short" if cause == "cut_short" else "skipped"
        self.last_skip = {"t": t, "what": what, "cause": cause, "reason": reason}
        listener = self.on_skip
        if listener is not None:
            listener(cause, reason)

    def take_in_background(
        self, t: float, budget: float, rebaseline: bool = False
    ) -> dict[str, float]:
        """Start a snapshot on a worker thread; return the values of the last one finished.

        The sampling thread only starts the work, so process and GC samples (and the
        thresholds on them) keep their cadence while a big heap is processed. A
        snapshot due while the previous one is still running is skipped, and one whose
        processing runs past ``budget`` seconds is dropped ("cut short"); both are
        counted and the latest is described in :meth:`to_dict`.
        """
        with self._lock:
            done, self._finished = self._finished, None
        self.last_snapshot_t = t
        worker = self._worker
        if worker is not None and worker.is_alive():
            self._skip(t, "busy", "the previous snapshot was still being processed")
            return done or {}
        self._worker = threading.Thread(
            target=self._take_boxed,
            args=(t, budget, rebaseline),
            name="memlens-snapshot",
            daemon=True,
        )
        self._worker.start()
        return done or {}

    def wait_background(self, timeout: float | None = None) -> bool:
        """Wait for a background snapshot to finish; True when none is running."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
            return not worker.is_alive()
        return True

    def _take_boxed(self, t: float, budget: float, rebaseline: bool) -> None:
        values = self.take(t, rebaseline=rebaseline, deadline=time.monotonic() + budget)
        if values is None:
            reason = f"processing took longer than its {budget:g} s time box"
            self._skip(t, "cut_short", reason)
            return
        with self._lock:
            self._finished = values

    def take(
        self, t: float, rebaseline: bool = False, deadline: float | None = None
    ) -> dict[str, float] | None:
        """Snapshot now; return ``{"component.<name>": bytes}`` for the series.

        With a ``deadline`` (``time.monotonic()``), a snapshot whose processing is not
        done by then is dropped and ``None`` returned; nothing it found is kept.
        """
        self.last_snapshot_t = t
        self._skip_told = False
        began = time.perf_counter()
        try:
            return self._take(rebaseline, deadline)
        finally:
            self.last_duration = time.perf_counter() - began

    def _take(self, rebaseline: bool, deadline: float | None) -> dict[str, float] | None:
        if not self.tracing and self.sampler is not None and self.sampling:
            # The sampler keeps per-stack sums already: no snapshot to take.
            groups = self.sampler.groups()
            sites = {k: (a.size, a.count) for k, a in sites_of_groups(groups).items()}
            totals = component_totals_of_groups(groups, self.heap.components)
        else:
            snapshot = self.heap.snapshot()
            if snapshot is None:
                return {}
            if _past(deadline):
                return None
            sites = {
                k: (acc.size, acc.count) for k, acc in self.heap.group_by_site(snapshot).items()
            }
            if _past(deadline):
                return None
            totals = self.heap.component_totals(snapshot) if self.heap.components else {}
            del snapshot  # the traces are the expensive part; keep only the sums
        if _past(deadline):
            return None
        with self._lock:
            if self.baseline is None or rebaseline:
                self.baseline = sites
            self.current = sites
            self.tracker.update(totals, self.component_names)
            self.snapshots += 1
        return {FIELD_PREFIX + n: float(totals.get(n, (0, 0))[0]) for n in self.component_names}

    def growing_sites(self, limit: int = 5, component: str | None = None) -> list[AllocationSite]:
        """Sites whose live memory grew most since the baseline snapshot."""
        with self._lock:
            base, now = self.baseline or {}, self.current
            diffs = []
            for key, (size, count) in now.items():
                before = base.get(key, (0, 0))
                if size - before[0] > 0:
                    diffs.append((size - before[0], count - before[1], key, size))
        out = []
        for diff, count_diff, key, size in sorted(diffs, reverse=True):
            site = self._site(key, size, diff, count_diff)
            if component is not None and site.component != component:
                continue
            out.append(site)
            if len(out) >= limit:
                break
        return out

    def top_sites(self, limit: int = 10) -> list[AllocationSite]:
        """The largest live sites in the latest snapshot, with growth since the baseline."""
        with self._lock:
            base, now = self.baseline or {}, self.current
            biggest = sorted(now.items(), key=lambda kv: -kv[1][0])[:limit]
        return [
            self._site(
                key, size, size - base.get(key, (0, 0))[0], count - base.get(key, (0, 0))[1], count
            )
            for key, (size, count) in biggest
        ]

    def _site(
        self, key: tuple[str, int], size: int, diff: int, count_diff: int, count: int = 0
    ) -> AllocationSite:
        filename, lineno = key
        components = self.heap.components
        return AllocationSite(
            filename=filename,
            lineno=lineno,
            # HeapMeter caches names per line; reusing it keeps reports consistent.
            function=self.heap.function_name(filename, lineno),
            size=size,
            count=count,
            size_diff=diff,
            count_diff=count_diff,
            component=components.component_of(filename) if components else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracing": self.tracing,
            "sites_source": self.source,
            "sampler_error": self.sampler_error,
            "snapshots": self.snapshots,
            "snapshots_skipped": self.skipped,
            "snapshots_cut_short": self.cut_short,
            "last_snapshot_skip": dict(self.last_skip) if self.last_skip else None,
            "last_snapshot_seconds": self.last_duration,
            "components": self.component_names,
        }
