"""Sampled allocation sites, cheap enough to leave on in production.

:class:`AllocationSampler` drives the C tracer ``memlens._sampler``: the Python
allocators (raw, mem and object domains) are hooked, allocations are sampled by
bytes with a Poisson process (mean ``interval``; chosen automatically by default, see
below), and each sample
keeps its Python stack and is forgotten when freed. Per stack it reports estimated
live bytes/blocks and cumulative allocated bytes/blocks (each sample of ``size``
bytes stands for ``size / p`` bytes, ``p = 1 - exp(-size / interval)``), attributed
to user-code sites and components exactly like :class:`~memlens.heap.heap_meter.HeapMeter`.

The estimate of a site holding ``B`` bytes has a relative standard error of about
``sqrt(interval / B)``. With no interval given (:data:`AUTO`) the C tracer chooses it
from the live heap as it grows or shrinks: ``live / AUTO_SAMPLES`` (a site holding
1 % of the heap then has ~400 samples: within +-10 % at two standard errors),
clamped to [:data:`AUTO_MIN`, :data:`AUTO_MAX`], and never so small that the sampler
costs more than ``budget`` (:data:`AUTO_BUDGET` unless given) of the process CPU
time: its hooks' fast path on every allocator call, which no interval changes, and
its samples, which get what the fast path leaves (a program that allocates very fast
gets a larger interval, and less accuracy, rather than a slowdown; :meth:`stats` says
so, ``limited_by_cost``, and estimates both parts, ``hooks_seconds`` and
``record_seconds``). An explicit ``interval`` is kept fixed. Per sampled block ~100
bytes plus its stack.

Where the extension is missing (no compiler at install time, a Python other than
CPython 3.11/3.12) or ``MEMLENS_NO_EXTENSIONS=1``, the same API runs on exact
tracemalloc (``backend == "tracemalloc"``), with tracemalloc's cost.

Peak: :meth:`peak_bytes` is the highest estimated live total since :meth:`start`
(or :meth:`begin_peak`), kept in C as samples come and go, and :meth:`peak_sites`
the sites live at that moment; each sampler reads its own peak through
``heap/peaks.py``, so a reset elsewhere never lowers it.

One sampler runs per process (the hooks are process-wide); starting a second one
raises :class:`RuntimeError` instead of silently sharing or stealing its data.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from memlens.core.session import AllocationSite
from memlens.heap.heap_meter import (
    DEFAULT_DEPTH,
    Frames,
    HeapMeter,
    component_totals_of_groups,
    is_own_frame,
    sites_of_groups,
)
from memlens.heap.native_ext import load_extension
from memlens.heap.peaks import PeakWatch, SampledSource

AUTO = 0  # an interval of 0: chosen from the live heap (see the module docstring)
DEFAULT_INTERVAL = AUTO
AUTO_SAMPLES = 40_000  # live heap / interval
AUTO_MIN = 4 * 1024
AUTO_MAX = 512 * 1024
AUTO_BUDGET = 0.02  # share of the process CPU time the sampler may cost (hooks + samples)
SAMPLING = "sampling"
TRACEMALLOC = "tracemalloc"

_owner_lock = threading.Lock()
_owner: AllocationSampler | None = None


class AllocationSampler:
    """Live and allocated bytes per allocation site, sampled (C) or exact (fallback)."""

    def __init__(
        self,
        interval: int | None = DEFAULT_INTERVAL,
        depth: int = DEFAULT_DEPTH,
        components: Mapping[str, str | Iterable[str]] | None = None,
        seed: int = 0,
        exact: bool = False,
        budget: float = AUTO_BUDGET,
    ) -> None:
        if interval is None:
            interval = AUTO
        if int(interval) < 0:
            raise ValueError("sampling interval must be at least 1 byte (0: automatic)")
        if not 1 <= depth <= 128:
            raise ValueError("sampling depth must be between 1 and 128 frames")
        if not 0 < budget <= 1:
            raise ValueError("sampling cost budget must be a share of CPU time in (0, 1]")
        self.auto = int(interval) == AUTO
        self._interval = AUTO_MIN if self.auto else int(interval)
        self.depth = depth
        self.seed = seed
        self.budget = float(budget)
        self._ext: Any = None if exact else load_extension("_sampler")
        # The heap meter does the attribution (and is the exact fallback).
        self.meter = HeapMeter(depth, components)
        self._running = False
        self._peak: PeakWatch | None = None
        self._traced_start = 0  # exact fallback: traced bytes when it started
        self._last_peak = 0  # the peak and its rows when last stopped
        self._last_peak_rows: list[tuple[Frames, int, int]] = []

    @property
    def backend(self) -> str:
        """``"sampling"`` (C extension) or ``"tracemalloc"`` (exact fallback)."""
        return SAMPLING if self._ext is not None else TRACEMALLOC

    @property
    def components(self) -> Any:
        return self.meter.components

    @property
    def interval(self) -> int:
        """The mean sampling interval in bytes now (it moves when automatic)."""
        if self._ext is not None and self._running and self.auto:
            return round(self._ext.stats()["interval"])
        return self._interval

    def set_interval(self, interval: int) -> None:
        """Sample every ``interval`` bytes on average from now on (automatic choice
        off). Safe from any thread while running; samples taken so far keep their
        weights, so the estimates stay unbiased."""
        if int(interval) < 1:
            raise ValueError("sampling interval must be at least 1 byte")
        self.auto = False
        self._interval = int(interval)
        if self._ext is not None and self._running:
            self._ext.set_interval(float(interval))

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> AllocationSampler:
        """Install the hooks (or start tracemalloc). Returns ``self``."""
        global _owner
        with _owner_lock:
            if self._running:
                raise RuntimeError("this sampler is already running")
            if self._ext is not None:
                if _owner is not None and _owner is not self:
                    raise RuntimeError(
                        "another memlens allocation sampler is running in this process; "
                        "stop it first (the hooks are process-wide)"
                    )
                self._ext.start(
                    interval=float(self._interval),
                    max_frames=self.depth,
                    seed=self.seed,
                    auto=float(AUTO_SAMPLES) if self.auto else 0.0,
                    min_interval=float(AUTO_MIN),
                    max_interval=float(AUTO_MAX),
                    budget=self.budget,
                )
                _owner = self
                self._peak = PeakWatch(SampledSource(self._ext))
            else:
                self.meter.start()
                self.meter.begin_peak()
                self._traced_start = self.meter.read().get("traced", 0)
            self._running = True
        return self

    def stop(self) -> None:
        """Remove the hooks; the data gathered so far stays readable."""
        global _owner
        with _owner_lock:
            if not self._running:
                return
            if self._ext is not None:
                self._interval = self.interval
                self._last_peak = self.peak_bytes()
                self._last_peak_rows = self._peak_rows()
                if self._peak is not None:
                    self._peak.close()
                    self._peak = None
                self._ext.stop()
                _owner = None
            else:
                self._last_peak = self.peak_bytes()
                self.meter.stop()
            self._running = False

    @property
    def running(self) -> bool:
        if self._ext is not None:
            return self._running and bool(self._ext.is_running())
        return self._running and self.meter.tracing

    def __enter__(self) -> AllocationSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reading -------------------------------------------------------------------
    def groups(self) -> list[tuple[Frames, int, int]]:
        """``(frames, live bytes, live blocks)`` per stack, memlens's own dropped."""
        if self._ext is None:
            snap = self.meter.snapshot()
            return self.meter.groups(snap) if snap is not None else []
        return [
            (frames, round(lb), round(lk))
            for frames, lb, lk, _ab, _ak in self._ext.stacks()
            if lb > 0 and not (frames and is_own_frame(frames[0][0]))
        ]

    def allocated_groups(self) -> list[tuple[Frames, int, int]]:
        """``(frames, bytes, blocks)`` allocated since start, freed or not (sampling only)."""
        if self._ext is None:
            return []
        return [
            (frames, round(ab), round(ak))
            for frames, _lb, _lk, ab, ak in self._ext.stacks()
            if ab > 0 and not (frames and is_own_frame(frames[0][0]))
        ]

    def sites(self, limit: int = 10) -> list[AllocationSite]:
        """The ``limit`` largest live sites (user-code lines)."""
        return self.meter.rank_sites(sites_of_groups(self.groups()), None, limit)

    def site_sums(self) -> dict[tuple[str, int], tuple[int, int]]:
        """``(filename, lineno) -> (live bytes, live blocks)`` for every site."""
        return {k: (a.size, a.count) for k, a in sites_of_groups(self.groups()).items()}

    def component_totals(self) -> dict[str, tuple[int, int]]:
        """``component -> (live bytes, live blocks)``."""
        return component_totals_of_groups(self.groups(), self.meter.components)

    def live_bytes(self) -> int:
        """Estimated live bytes allocated while sampling (exact traced bytes on fallback)."""
        if self._ext is None:
            return self.meter.read().get("traced", 0)
        return round(sum(row[1] for row in self._ext.stacks()))

    # -- the peak -----------------------------------------------------------------
    def begin_peak(self) -> None:
        """Count the peak from now (other readers of the same sampler keep theirs)."""
        if self._ext is None:
            self.meter.begin_peak()
            self._traced_start = self.meter.read().get("traced", 0)
        elif self._peak is not None:
            self._peak.restart()

    def peak_bytes(self) -> int:
        """Highest estimated live bytes allocated while sampling, since :meth:`start`
        or :meth:`begin_peak` (exact traced growth on the fallback); after
        :meth:`stop`, the peak it had then."""
        if not self._running:
            return self._last_peak
        if self._ext is None:
            peak = self.meter.read().get("traced_peak", 0)
            return max(0, peak - self._traced_start)
        return self._peak.peak() if self._peak is not None else 0

    def _peak_rows(self) -> list[tuple[Frames, int, int]]:
        if self._ext is None or self._peak is None or self._peak.carried:
            return []  # the sampler's own peak is no longer this reader's
        return [
            (frames, round(b), round(k))
            for frames, b, k in self._ext.peak_stacks()
            if b > 0 and not (frames and is_own_frame(frames[0][0]))
        ]

    def peak_sites(self, limit: int = 10) -> list[AllocationSite]:
        """The ``limit`` largest sites live at the peak (sampling backend; empty on
        the exact fallback, or when another reader reset the peak after this one's
        was reached)."""
        rows = self._peak_rows() if self._running else self._last_peak_rows
        return self.meter.rank_sites(sites_of_groups(rows), None, limit)

    def stats(self) -> dict[str, Any]:
        """The sampler's own counters (samples, live samples, its memory).

        ``mem_limit`` and ``obj_limit``: the largest request the mem and object
        domains' allocator serves itself, probed at start (512 with pymalloc; ``None``
        when it never calls the raw domain): larger ones are counted once, by the raw
        domain's hook.
        """
        if self._ext is None:
            return {"backend": TRACEMALLOC, "running": self.running, "depth": self.depth}
        out = dict(self._ext.stats())
        out["backend"] = SAMPLING
        # The cost governor, not the heap, set the interval (see the module docstring).
        out["limited_by_cost"] = bool(
            self.auto
            and out["cost_floor"] > AUTO_MIN
            and out["cost_floor"] >= 0.8 * out["interval"]
        )
        return out

    # -- the blocks behind the estimates (the sampled leak doctor) ---------------------
    def stack_rows(self) -> list[tuple[Frames, float, float, float, int]]:
        """``(frames, live bytes, live blocks, live bytes in malloc'd blocks, live
        samples)`` per stack number (the index :meth:`live_addresses` takes), memlens's
        own stacks included."""
        if self._ext is None:
            return []
        rows = self._ext.stacks()
        details = self._ext.stack_details()  # stacks only ever get appended
        return [(r[0], d[0], r[2], d[1], d[2]) for r, d in zip(rows, details)]

    def ignore_thread(self, flag: bool = True) -> None:
        """Do not record samples on the calling thread (a tool's own worker) while
        ``flag``; its frees are still seen."""
        if self._ext is not None:
            self._ext.ignore_thread(bool(flag))

    def live_addresses(self, stack: int) -> list[tuple[int, int, int]]:
        """``(address, size, order)`` of the live sampled blocks of one stack."""
        return list(self._ext.live_addresses(stack)) if self._ext is not None else []

    def object_frames(self, obj: object) -> Frames | None:
        """The stack that allocated ``obj`` when its block is a live sample."""
        if self._ext is None:
            return None
        frames: Frames | None = self._ext.object_frames(obj)
        return frames

    def object_block(self, obj: object) -> int:
        """The address of the block ``obj`` lives in (``id(obj)`` less CPython's
        pre-header: the GC header, and managed-dict pointers)."""
        if self._ext is None:
            raise RuntimeError("object_block needs the sampling extension")
        return int(self._ext.object_block(obj))
