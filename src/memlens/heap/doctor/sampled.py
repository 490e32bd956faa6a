"""The leak doctor on sampled data: ``doctor(..., sample=True)``, ``memlens doctor --sample``.

The exact doctor traces every allocation with tracemalloc. Here the sampling tracer
(``memlens._sampler``, see :mod:`memlens.heap.sampler`) replaces it:

- **growth per site** is the sampled estimate of live bytes per stack at each
  checkpoint, attributed to user lines exactly as tracemalloc's traces are;
- **the objects at a growing site** (the doctor walks a few of them back to their
  roots) are found from the addresses of the site's live sampled blocks: an object
  lives in its block after CPython's pre-header (the GC header, and on 3.11 the
  managed-dict pointers: ``_PyType_PreHeaderSize``), so a block is matched to the
  object, among the GC's objects and what they refer to, whose block starts there
  (the match is checked both ways, never guessed from memory at the address);
- **an object's allocation site** (``sites.object_frames``) is its block's sampled
  stack, when the block was sampled;
- **native growth** is the allocator's bytes in use less the sampled estimate of the
  Python blocks the allocator serves.

The verdict rules are the exact doctor's (a leak needs sustained growth and a
retainer). What sampling changes is what can be seen: a site's estimate moves in
steps of about one ``interval``, so growth of ``r`` bytes per call shows only once
each segment of the run (a fifth of the measured calls) holds several samples. The
doctor therefore measures at least :func:`needed_calls` calls, raises the noise
floor of site series by the sampling error, and calls a run that could not see
growth of :data:`VISIBLE_RATE` bytes per call inconclusive, not clean.

Costs: sampling every :data:`DOCTOR_INTERVAL` bytes the steps run ~1.2-1.6x bare
(tracemalloc at the doctor's depth: 15-50x), and a checkpoint reads a few thousand
stacks instead of every live block.
"""

from __future__ import annotations

import gc
import math
import struct
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import compress
from typing import Any

from memlens.core.errors import ConfigError
from memlens.core.units import format_bytes
from memlens.heap.doctor import detect, growth, native, sites
from memlens.heap.doctor.checkpoints import OVERHEAD_FACTOR, OWN, Checkpoint, Reader, SiteKey
from memlens.heap.doctor.diagnosis import INCONCLUSIVE, NO_LEAK, Diagnosis
from memlens.heap.doctor.iterations import DENSE_NATIVE_FLOOR, Engine, Options
from memlens.heap.doctor.shallow import run_shallow
from memlens.heap.doctor.sites import CodeMap
from memlens.heap.sampler import AllocationSampler

DOCTOR_INTERVAL = 1024  # bytes: see the module docstring and docs/doctor.md
VISIBLE_RATE = 64.0  # bytes per call a sampled run must be able to see
# A site's growth is seen when each of the five segments of the measured calls holds
# about five samples: rate >= SAMPLES_PER_RUN * interval / measured calls.
SAMPLES_PER_RUN = 25
NOISE = 0.5  # of the sampling error, the rise per segment that is no rise
# ... and never less than this many intervals: a floor of a few samples moves by a
# sample or two (each weighs about an interval) with no change in what is live.
NOISE_INTERVALS = 2.5
MAX_OBJECTS_PER_SITE = 200  # newest sampled blocks offered per growing site
_PTR = struct.calcsize("P")
_GC_HEAD = 2 * _PTR  # sizeof(PyGC_Head)
# Where an object can start inside its block: no pre-header (atoms), after the GC
# header, after the GC header and the two managed-dict pointers (3.11 instances).
_OFFSETS = (0, _GC_HEAD, _GC_HEAD + 2 * _PTR)


def interval_of(sample: bool | int) -> int:
    """The sampling interval a ``sample`` argument asks for (True: the default)."""
    if sample is True:
        return DOCTOR_INTERVAL
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
        raise ConfigError(f"invalid sample interval {sample!r}: expected a number of bytes >= 1")
    return sample


def needed_calls(interval: float, rate: float = VISIBLE_RATE) -> int:
    """Measured calls after which growth of ``rate`` bytes per call is visible."""
    return math.ceil(SAMPLES_PER_RUN * interval / rate)


def visible_rate(interval: float, measured: int) -> float:
    """Smallest growth per call a run of ``measured`` calls could see."""
    return SAMPLES_PER_RUN * interval / max(1, measured)


def make_engine(
    code: CodeMap,
    options: Options,
    progress: Callable[[Engine], None] | None,
    sample: bool | int | None,
) -> tuple[Engine, str | None]:
    """The engine a doctor run uses, and a note when sampling was asked for but the
    extension is not there (the run is then exact, on tracemalloc)."""
    if sample is None or sample is False:
        return Engine(code, options, progress), None
    interval = interval_of(sample)
    sampler = AllocationSampler(interval, depth=min(128, max(1, options.nframes)))
    if sampler.backend != "sampling":
        return Engine(code, options, progress), (
            "sampling was asked for, but the memlens._sampler extension is not available "
            "(not built, or MEMLENS_NO_EXTENSIONS=1): the run used exact tracemalloc"
        )
    return SampledEngine(code, options, progress, sampler), None


class SampledReader(Reader):
    """Checkpoints from the sampler's live estimates instead of tracemalloc's traces."""

    def __init__(self, code: CodeMap, own: set[int], sampler: AllocationSampler) -> None:
        super().__init__(code, own)
        self.sampler = sampler

    def overhead(self) -> int:
        """The sampler's own tables (malloc'd: part of what the allocator holds).
        ``native_residual`` subtracts ``OVERHEAD_FACTOR`` times this (tracemalloc
        reports what it asked malloc for, not what malloc spent); the sampler reports
        its usable sizes, so it is scaled down to be subtracted once."""
        return int(self.sampler.stats().get("overhead_bytes", 0) / OVERHEAD_FACTOR)

    def _read_traces(self, cp: Checkpoint) -> None:
        total = big = 0.0
        site_bytes: dict[SiteKey, float] = {}
        site_blocks: dict[SiteKey, float] = {}
        for frames, live, blocks, live_big, samples in self.sampler.stack_rows():
            if not samples:
                continue
            site = self.site_of(frames)
            if site is OWN:
                continue
            total += live
            big += live_big
            if site is not None:
                site_bytes[site] = site_bytes.get(site, 0.0) + live
                site_blocks[site] = site_blocks.get(site, 0.0) + blocks
        cp.site_bytes = {k: round(v) for k, v in site_bytes.items()}
        cp.site_blocks = {k: round(v) for k, v in site_blocks.items()}
        cp.traced_total = round(total)
        cp.traced_malloc = round(big)
        cp.traced_blocks = 0
        cp.per_block_cost = 0.0


class SampledEngine(Engine):
    """The doctor's engine on the sampling tracer (see the module docstring)."""

    def __init__(
        self,
        code: CodeMap,
        options: Options,
        progress: Callable[[Engine], None] | None,
        sampler: AllocationSampler,
    ) -> None:
        super().__init__(code, options, progress)
        self.sampler = sampler
        self.reader = SampledReader(code, self.own, sampler)
        for obj in (
            self.reader.site_frames,
            self.reader._site_of_tb,
            self.reader.last_garbage_ids,
        ):
            self.own.add(id(obj))
        # Growth of VISIBLE_RATE bytes per call must be visible before "no leak".
        options.min_measured = max(options.min_measured, needed_calls(sampler.interval))

    @property
    def interval(self) -> int:
        return self.sampler.interval

    # -- lifecycle ---------------------------------------------------------------
    def begin(self) -> None:
        self.rss_start = native.rss()
        try:
            self.sampler.start()
        except RuntimeError as exc:
            raise ConfigError(f"cannot sample: {exc}") from None
        sites.use_object_frames(self.sampler.object_frames)
        # The doctor's checkpoints run on its own thread: not the steps' samples.
        run_shallow(self.sampler.ignore_thread, True)
        self._freeze_and_start_clock()

    def end(self) -> None:
        self.thaw()
        if self.sampler.running:
            sites.use_object_frames(None)
            self.sampler.stop()
            run_shallow(self.sampler.ignore_thread, False)

    @contextmanager
    def exact_tracing(self) -> Iterator[None]:
        """tracemalloc on top of the sampler for a short re-run of the step: charging
        native growth to a line subtracts Python objects only when they are traced
        (a big temporary handed to a C call moves the allocator's figures too)."""
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start(self.options.nframes)
        try:
            yield
        finally:
            if started:
                tracemalloc.stop()

    # -- signals -------------------------------------------------------------------
    def _evaluate(self) -> list[detect.Signal]:
        cps = self.checkpoints
        measured = max(1, cps[-1].iteration - cps[0].iteration)
        floor = 0.0
        if self.dense:
            floor = max(DENSE_NATIVE_FLOOR, 0.01 * self.memory.grown / max(1, self.iterations))
        # The native residual carries the sampling error of the Python blocks malloc
        # serves: about sqrt(interval x their growth) over the run.
        grew = max(0, cps[-1].traced_malloc - cps[0].traced_malloc)
        floor = max(floor, 4.0 * math.sqrt(self.interval * grew) / measured)
        signals = detect.evaluate(
            cps, self.malloc, not self._gc_enabled, self.reader.baseline_lens, native_floor=floor
        )
        return [s for s in (self._resampled(s) for s in signals) if s is not None]

    def _resampled(self, s: detect.Signal) -> detect.Signal | None:
        """A site's series judged again with the sampling error as its noise floor: an
        estimate of ``B`` bytes is off by about ``sqrt(interval x B)``; half of that,
        because a leak's own estimate only ever rises (its samples stay live), while a
        steady population must then still rise in every one of the last segments.
        Never less than :data:`NOISE_INTERVALS` intervals, and flat is judged against
        the highest floor so far: a small population's floor scatters by a sample or
        two, and a dip that came back is not growth."""
        if s.kind != "site":
            return s
        xs = [float(c.iteration) for c in self.checkpoints]
        ys = [float(c.site_bytes.get(s.key, 0)) for c in self.checkpoints]  # type: ignore[call-overload]
        noise = max(NOISE * math.sqrt(self.interval * max(ys)), NOISE_INTERVALS * self.interval)
        g = growth.assess(xs, ys, detect.MIN_SITE_RATE, noise=noise, against_peak=True)
        return None if g.state == growth.FLAT else detect.Signal(s.kind, s.key, g, s.label)

    # -- objects ---------------------------------------------------------------------
    def sampled_objects(self, wanted: Iterable[SiteKey]) -> list[Any]:
        """Live objects in the newest sampled blocks of each wanted site (up to
        :data:`MAX_OBJECTS_PER_SITE` blocks a site), newest first."""
        want = set(wanted)
        if not want or not self.sampler.running:
            return []
        blocks: list[tuple[int, int]] = []  # (order, address)
        per_site: dict[SiteKey, list[tuple[int, int]]] = {}
        for number, (frames, _live, _n, _big, samples) in enumerate(self.sampler.stack_rows()):
            if not samples:
                continue
            site = self.reader.site_of(frames)
            if site in want:
                per_site.setdefault(site, []).extend(
                    (order, addr) for addr, _size, order in self.sampler.live_addresses(number)
                )
        for found in per_site.values():
            found.sort(reverse=True)
            blocks.extend(found[:MAX_OBJECTS_PER_SITE])
        blocks.sort(reverse=True)
        return objects_in_blocks([addr for _order, addr in blocks], self.sampler.object_block)

    # -- the report ------------------------------------------------------------------
    def annotate(self, diag: Diagnosis) -> None:
        """Say how the run was sampled and what it could see; a clean verdict from a
        run too short to see :data:`VISIBLE_RATE` bytes per call is inconclusive."""
        measured = max(0, self.iterations - max(self.warmup, 0))
        seen = visible_rate(self.interval, measured)
        diag.details["sampling"] = {
            "interval_bytes": self.interval,
            "measured_calls": measured,
            "visible_bytes_per_call": round(seen, 1),
        }
        diag.notes.append(
            f"sampled every {format_bytes(self.interval)} on average (estimates): growth of "
            f"{format_bytes(seen)} per call or more shows over these {measured:,} calls"
        )
        if diag.verdict == NO_LEAK and seen > VISIBLE_RATE:
            diag.verdict = INCONCLUSIVE
            diag.reason = (
                f"no growth seen, but sampled every {format_bytes(self.interval)} over "
                f"{measured:,} measured calls only growth of {format_bytes(seen)} per call or "
                f"more would show (about {needed_calls(self.interval):,} calls are needed for "
                f"{format_bytes(VISIBLE_RATE)}): raise --budget, or drop --sample for an exact run"
            )


def objects_in_blocks(addresses: list[int], block_of: Callable[[object], int]) -> list[Any]:
    """The live objects whose blocks start at these addresses, in their order.

    Candidates are the GC's objects and what they refer to (atoms and untracked
    containers are never listed by the GC themselves) whose ``id`` lies at one of the
    possible pre-header offsets past an address; a candidate is kept only when its
    own block (``block_of``, from its type's pre-header) starts at that address.
    Nothing at an address is read.
    """
    if not addresses:
        return []
    wanted = set(addresses)
    # Blocks may lie closer together than the largest pre-header (small glibc chunks
    # are 32 bytes apart): an id can sit past several addresses, so each candidate is
    # judged by its own block, not by the address it was found from.
    candidates = {addr + off for addr in wanted for off in _OFFSETS}
    objs = gc.get_objects()
    try:
        hits = list(compress(objs, map(candidates.__contains__, map(id, objs))))
        if len(hits) < len(wanted):
            refs = gc.get_referents(*objs)
            hits.extend(compress(refs, map(candidates.__contains__, map(id, refs))))
            del refs
    finally:
        del objs
    by_block: dict[int, Any] = {}
    for obj in hits:
        block = block_of(obj)
        if block in wanted and block not in by_block:
            by_block[block] = obj
    del hits
    return [by_block[a] for a in addresses if a in by_block]
