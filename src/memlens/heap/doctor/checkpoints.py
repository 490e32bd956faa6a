"""One measurement between iterations: what is alive, where it was allocated.

A checkpoint reads, in one pass and without changing what the program keeps:

- traced bytes and blocks per *user* allocation site (tracemalloc);
- live GC-tracked objects per type and the length of every live container;
- with the cyclic GC disabled by the program: the unreachable cycles that are piling
  up (found with ``DEBUG_SAVEALL`` so nothing is freed, then handed back);
- the C allocator's bytes in use, RSS, and tracemalloc's own overhead, so native
  growth can be told apart from Python objects;
- the number of atexit callbacks.

When the GC is enabled the program would collect cycles on its own, so a checkpoint
runs a full collection first; when it is disabled, it never collects anything away.
A checkpoint makes one pass over the heap when nothing is frozen (see ``gcpasses``):
the collection that opens its window (GC enabled) or the one that counts the
unreachable cycles (GC disabled); the rest is done without traversing the heap.
"""

from __future__ import annotations

import array
import atexit
import collections
import gc
import itertools
import operator
import sys
import tracemalloc
from collections import _count_elements  # type: ignore[attr-defined]
from dataclasses import dataclass, field
from itertools import compress, repeat
from typing import Any

from memlens.heap.doctor import native
from memlens.heap.doctor.gcpasses import Hold, clear_free_lists, free_lists_clearable
from memlens.heap.doctor.settled import SettledHeap
from memlens.heap.doctor.sites import CodeMap, Frame
from memlens.heap.native_ext import load_extension

# Blocks larger than this come from malloc, not pymalloc's mmapped arenas, so they
# are the traced part of what mallinfo2 sees.
_PYMALLOC_MAX = 512
# tracemalloc's get_tracemalloc_memory() reports the bytes it asked malloc for, not
# what malloc spent (chunk headers, hash-table slack): measured at ~2.5x when its
# traceback table grows, so that much of its growth is not the program's.
OVERHEAD_FACTOR = 2.5
CONTAINER_TYPES = frozenset(
    {
        list,
        dict,
        set,
        collections.deque,
        collections.OrderedDict,
        collections.defaultdict,
        collections.Counter,
    }
)
_CONTAINER_TUPLE = tuple(CONTAINER_TYPES)
_MIN_LEN = 3

SiteKey = Frame
OWN: SiteKey = ("<memlens>", 0)  # allocations made by the doctor itself


@dataclass
class Checkpoint:
    """Figures read after ``iteration`` step calls."""

    iteration: int
    site_bytes: dict[SiteKey, int] = field(default_factory=dict)
    site_blocks: dict[SiteKey, int] = field(default_factory=dict)
    traced_total: int = 0
    traced_malloc: int = 0
    tracemalloc_overhead: int = 0
    container_lens: dict[int, tuple[str, int]] = field(default_factory=dict)
    garbage_objects: int = 0
    garbage_bytes: int = 0
    garbage_site_bytes: dict[SiteKey, int] = field(default_factory=dict)
    malloc_in_use: int = -1
    rss: int = 0
    atexit_callbacks: int = 0
    traced_blocks: int = 0
    per_block_cost: float = 0.0  # tracemalloc's unreported malloc cost per traced block
    blocks: int = 0  # the interpreter's memory blocks in use, less the doctor's own

    @property
    def native_residual(self) -> int:
        """Allocator bytes in use that tracemalloc does not account for."""
        if self.malloc_in_use < 0:
            return self.rss - self.traced_total - self.tracemalloc_overhead
        return int(
            self.malloc_in_use
            - self.traced_malloc
            - OVERHEAD_FACTOR * self.tracemalloc_overhead
            - self.per_block_cost * self.traced_blocks
        )


# Counts up to 256 are CPython's cached small ints: counting in chunks this long
# creates no int per object, and every int the doctor creates is a traced
# allocation (several microseconds each while tracemalloc runs). A plain Counter
# over a 2M-object heap took ~5 s under tracing; chunked, ~0.25 s.
_COUNT_CHUNK = 256


def type_counts(objs: list[object]) -> dict[str, int]:
    """Live objects per type name (counted by type object in C, in chunks)."""
    by_type: dict[type, int] = {}
    part: dict[type, int] = {}
    types = list(map(type, objs))
    for start in range(0, len(types), _COUNT_CHUNK):
        _count_elements(part, types[start : start + _COUNT_CHUNK])
        for t, n in part.items():
            by_type[t] = by_type.get(t, 0) + n
        part.clear()
    del types
    counts: dict[str, int] = {}
    for t, n in by_type.items():
        mod = t.__module__
        name = t.__qualname__ if mod in ("builtins", None) else f"{mod}.{t.__qualname__}"
        counts[name] = counts.get(name, 0) + n
    return counts


def type_name(obj: object) -> str:
    t = type(obj)
    mod = t.__module__
    return t.__qualname__ if mod in ("builtins", None) else f"{mod}.{t.__qualname__}"


def collect_saving_garbage() -> list[Any]:
    """A full collection that frees nothing unreachable, but empties the free lists.

    DEBUG_SAVEALL moves unreachable objects to ``gc.garbage`` instead of freeing them;
    they are returned and taken out of it again, so once the caller drops them they
    are exactly as unreachable (and alive) as before: with the GC disabled, those
    cycles are the program's leak, not the doctor's to free.
    """
    start = len(gc.garbage)
    old_debug = gc.get_debug()
    gc.set_debug(old_debug | gc.DEBUG_SAVEALL)
    try:
        gc.collect()
    finally:
        gc.set_debug(old_debug)
    found = gc.garbage[start:]
    del gc.garbage[start:]
    return found


def collect_keeping_garbage() -> None:
    """A full collection that frees nothing the program keeps unreachable (the GC is
    disabled: those cycles are its leak), but empties the free lists."""
    collect_saving_garbage()


class Reader:
    """Takes checkpoints; remembers one representative traceback per site."""

    def __init__(self, code: CodeMap, own: set[int]) -> None:
        self.code = code
        self.own = own  # ids of the doctor's own bookkeeping objects
        self.site_frames: dict[SiteKey, tuple[Frame, ...]] = {}
        self._site_of_tb: dict[tuple[Frame, ...], SiteKey | None] = {}
        self.last_garbage_ids: set[int] = set()
        # Container lengths at the first checkpoint; later checkpoints keep only the
        # containers that have grown since, which keeps the bookkeeping small.
        self.baseline_lens: dict[int, tuple[str, int]] | None = None
        # Shortest container followed; a run under memory pressure starts at one
        # entry, as it makes only a few calls (see ``Engine``).
        self.min_len = _MIN_LEN
        self.own_malloc = 0
        self.own_rss = 0
        self.own_overhead = 0
        self.own_blocks = 0
        # The figures when the checkpoint began: blocks (see ``mark``), malloc, RSS,
        # tracemalloc's own; in an array, so that keeping them makes no object that
        # the end of the window would count as the doctor's.
        self._window = array.array("q", [0, 0, 0, 0])
        self._open = False
        self.per_block_cost = 0.0
        self.baseline_types: dict[str, int] = {}
        # The heap frozen at the start (see ``frozen.FrozenHeap``): its containers
        # and type counts, which gc.get_objects() no longer lists.
        self.frozen_containers: list[Any] = []
        self.frozen_types: dict[str, int] = {}
        # True while the doctor's frozen heap is set aside (something is frozen: no
        # need to count the permanent generation, see ``gcpasses``).
        self.frozen_heap = False
        # The frozen containers and their lengths at the first checkpoint.
        self._frozen_lens: tuple[list[Any], list[int]] | None = None
        # The baseline's container addresses, sorted, and their lengths then.
        self._base_ids = array.array("Q")
        self._base_sizes = array.array("q")
        # Whether the program's collector was on when the window opened (held off
        # inside it, see ``gcpasses.Hold``), and how many objects the last
        # checkpoint listed outside the frozen heap.
        self.program_gc = gc.isenabled()
        self.hold = Hold()
        self.listed = 0
        # The heap frozen between checkpoints of the watch and the look (see ``settled``).
        self.settled = SettledHeap()

    def use_frozen(self, containers: list[Any], frozen: bool) -> None:
        """The containers of the heap the doctor froze at the start (``[]``: none,
        or given back), and whether that heap is still frozen."""
        self.frozen_containers = containers
        self.frozen_heap = frozen
        if self._frozen_lens is not None and self._frozen_lens[0] is not containers:
            self._frozen_lens = None

    def site_of(self, frames: tuple[Frame, ...]) -> SiteKey | None:
        """The innermost user frame of a raw traceback (cached per traceback).

        Allocations made by memlens itself map to :data:`OWN`.
        """
        try:
            return self._site_of_tb[frames]
        except KeyError:
            pass
        idx = self.code.user_frame_index(frames)
        site: SiteKey | None = frames[idx] if idx is not None else None
        if site is None and any(self.code.is_memlens(f[0]) for f in frames):
            site = OWN
        self._site_of_tb[frames] = site
        if site is not None and site is not OWN:
            known = self.site_frames.get(site)
            if known is None or len(frames) > len(known):
                self.site_frames[site] = frames
        return site

    def mark(self) -> None:
        """Note the interpreter's blocks in use before the checkpoint makes anything.

        Call as ``Reader.mark(reader)`` (a bound method would be an object of its
        own), after the collection, on the thread that takes the checkpoint; the
        blocks the checkpoint still holds at :meth:`end_window` are the doctor's.
        """
        self._window[0] = sys.getallocatedblocks()

    def open_window(self) -> None:
        """The collection that starts a checkpoint, then :meth:`mark`; automatic
        collections are held off until :meth:`end_window`.

        GC enabled: a full collection (the program's own collector would free
        these cycles: let it), with the heap settled since the last checkpoint
        handed back (see ``settled``). Disabled: only the free lists are emptied
        (the unreachable cycles are the program's; :meth:`read` counts them).
        Call as ``Reader.open_window(reader)``.
        """
        self.program_gc = gc.isenabled()
        if self.program_gc:
            self.settled.collect()
            Reader.mark(self)
            self.hold.start()
            return
        # With the GC off nothing is collected: there is nothing to settle.
        self.settled.stop()
        if free_lists_clearable(self.frozen_heap):
            clear_free_lists()
        else:
            collect_keeping_garbage()
        Reader.mark(self)
        self.hold.start()

    def read(self, iteration: int, collected: bool = False) -> Checkpoint:
        """One checkpoint; ``collected``: the caller has just called
        :meth:`open_window`."""
        if not collected:
            Reader.open_window(self)
        cp = Checkpoint(iteration=iteration)
        cp.blocks = self._window[0] - self.own_blocks
        # Process-level figures are read before the doctor allocates anything, and
        # whatever the doctor itself adds until the end of the checkpoint is
        # subtracted from every later reading (see ``end_window``).
        cp.malloc_in_use = native.malloc_in_use() - self.own_malloc
        cp.rss = native.rss() - self.own_rss
        cp.tracemalloc_overhead = self.overhead() - self.own_overhead
        self._window[1] = native.malloc_in_use()
        self._window[2] = native.rss()
        self._window[3] = self.overhead()
        self._open = True
        if not self.program_gc:
            self._account_garbage(cp)
        self._read_traces(cp)
        self._read_objects(cp)
        cp.atexit_callbacks = atexit._ncallbacks()
        return cp

    def overhead(self) -> int:
        """The tracer's own tables, as ``native_residual`` subtracts them
        (tracemalloc's; a sampled run's reader answers for the sampler)."""
        return tracemalloc.get_tracemalloc_memory()

    def calibrate(self, n: int = 4000) -> None:
        """Measure what tracemalloc costs in malloc per traced block beyond what
        ``get_tracemalloc_memory()`` reports, so Python-level growth is not taken
        for native growth. Call while tracing."""
        if not tracemalloc.is_tracing() or native.malloc_in_use() < 0:
            return
        m0 = native.malloc_in_use()
        o0 = tracemalloc.get_tracemalloc_memory()
        holder = [None] * n  # one big block, allocated before measuring
        m0 = native.malloc_in_use()
        o0 = tracemalloc.get_tracemalloc_memory()
        for i in range(n):
            holder[i] = (i % 200, None)  # type: ignore[call-overload]  # one block each
        cost = (
            native.malloc_in_use()
            - m0
            - OVERHEAD_FACTOR * (tracemalloc.get_tracemalloc_memory() - o0)
        )
        del holder
        self.per_block_cost = max(0.0, cost / n)

    def end_window(self) -> None:
        """Charge what the doctor allocated since ``read`` began to the doctor.

        Its own cycles are freed by a young collection (all it made in the window
        is young, see :meth:`open_window`), then the free lists are emptied, as at
        ``mark``: without a pass over the heap when nothing is frozen.
        """
        try:
            if not self._open:
                return
            gc.collect(1)  # the doctor's own cycles
            if free_lists_clearable(self.frozen_heap):
                clear_free_lists()
            elif self.program_gc:
                gc.collect()
            else:
                collect_keeping_garbage()  # frees nothing: those cycles are the leak
            # First, before anything made since ``mark`` is freed (or handed to a
            # free list, which the next collection empties).
            self.own_blocks += sys.getallocatedblocks() - self._window[0]
            _, m0, r0, o0 = self._window
            self.own_malloc += native.malloc_in_use() - m0
            self.own_rss += native.rss() - r0
            self.own_overhead += self.overhead() - o0
            self._open = False
        finally:
            self.hold.release()

    def _read_traces(self, cp: Checkpoint) -> None:
        if not tracemalloc.is_tracing():
            return
        snapshot = tracemalloc.take_snapshot()
        raw = getattr(snapshot.traces, "_traces", None)
        if raw is None:  # pragma: no cover - private layout changed
            raw = [
                (t.domain, t.size, tuple((f.filename, f.lineno) for f in reversed(t.traceback)))
                for t in snapshot.traces
            ]
        site_bytes = cp.site_bytes
        site_blocks = cp.site_blocks
        total = big = blocks = 0
        site_of = self.site_of
        own = OWN
        # Every int this loop creates is itself traced, and tracing an allocation is
        # expensive, so group the blocks by traceback first (a C-level sort; equal
        # tracebacks are one shared tuple) and sum each group in C.
        size_of = operator.itemgetter(1)
        tb_of = operator.itemgetter(2)
        for tb, group in itertools.groupby(sorted(raw, key=tb_of), key=tb_of):
            site = site_of(tb)
            if site is own:
                continue
            sizes = list(map(size_of, group))
            n = len(sizes)
            size = sum(sizes)
            total += size
            blocks += n
            big += sum(compress(sizes, map(operator.lt, repeat(_PYMALLOC_MAX), sizes)))
            if site is not None:
                site_bytes[site] = site_bytes.get(site, 0) + size
                site_blocks[site] = site_blocks.get(site, 0) + n
        cp.traced_total = total
        cp.traced_malloc = big
        cp.traced_blocks = blocks
        cp.per_block_cost = self.per_block_cost
        del snapshot, raw

    def _read_objects(self, cp: Checkpoint) -> None:
        """Container lengths (and, at the first checkpoint, live objects per type).

        Only containers with at least ``_MIN_LEN`` entries are followed: a leaking
        collection is past that after the warm-up. The first checkpoint chooses the
        containers; later ones keep those that have grown since. The filtering runs
        in C; the Python-level work (ids, which are traced allocations) is for the
        grown containers only.
        """
        if self.baseline_lens is None:
            self._read_baseline(cp)
            return
        base = self.baseline_lens
        lens = cp.container_lens
        own = self.own
        objs = gc.get_objects()
        self.listed = len(objs)
        try:
            grown = self._grown_containers(objs)
        finally:
            del objs
        grown.extend(self._grown_containers(self._frozen_candidates()))
        for obj, n in grown:
            oid = id(obj)
            if oid in own:
                continue
            name = type_name(obj)
            if base[oid][0] == name:  # not a new object at a reused address
                lens[oid] = (name, n)
        del grown

    def _read_baseline(self, cp: Checkpoint) -> None:
        """The first checkpoint: every long container's length, and the type counts."""
        lens: dict[int, tuple[str, int]] = {}
        own = self.own
        objs = gc.get_objects()
        self.listed = len(objs)
        try:
            conts = list(compress(objs, map(CONTAINER_TYPES.__contains__, map(type, objs))))
            counts = type_counts(objs)
            for name, n in self.frozen_types.items():
                counts[name] = counts.get(name, 0) + n
            self.baseline_types = counts
        finally:
            del objs
        frozen = self.frozen_containers
        young = len(conts)
        conts.extend(frozen)
        sizes = list(map(len, conts))
        if frozen:
            # Made after the listing above: never in the baseline, never followed.
            self._frozen_lens = (frozen, sizes[young:])
        # ``operator.le`` is a fast C call; ``_MIN_LEN.__le__`` is a method-wrapper
        # that allocates an argument tuple per call (a traced allocation): 25x slower.
        long_enough = list(map(operator.le, repeat(self.min_len), sizes))
        for obj, n in zip(compress(conts, long_enough), compress(sizes, long_enough)):
            oid = id(obj)
            if oid not in own:
                lens[oid] = (type_name(obj), n)
        del conts, sizes
        self.baseline_lens = lens
        # The same, sorted by address, for the C filter of later checkpoints.
        order = sorted(lens)
        self._base_ids = array.array("Q", order)
        self._base_sizes = array.array("q", [lens[i][1] for i in order])
        cp.container_lens = {}

    def _grown_containers(self, objs: list[Any]) -> list[tuple[Any, int]]:
        """``(container, length)`` for the baseline's containers among ``objs`` that
        are longer than at the first checkpoint (or a new object at the address of
        one: the caller tells them apart by type)."""
        accel = load_extension("_census")
        if accel is not None:
            found: list[tuple[Any, int]] = accel.grown_containers(
                objs, _CONTAINER_TUPLE, self._base_ids, self._base_sizes, self.min_len
            )
            return found
        base = self.baseline_lens or {}
        conts = list(compress(objs, map(CONTAINER_TYPES.__contains__, map(type, objs))))
        sizes = list(map(len, conts))
        out = []
        for obj, n in zip(conts, sizes):
            old = base.get(id(obj))
            if old is not None and n > old[1]:
                out.append((obj, n))
        return out

    def _frozen_candidates(self) -> list[Any]:
        """Of the heap frozen at the start, the containers that can have grown.

        Only those longer than at the first checkpoint: picked out in C, so that a
        checkpoint costs what the steps allocate, not a Python loop over every
        container the program already held (~0.7 s a checkpoint at 1.5M of them).
        """
        frozen = self.frozen_containers
        if not frozen:
            return []
        if self._frozen_lens is not None and self._frozen_lens[0] is frozen:
            return list(compress(frozen, map(operator.gt, map(len, frozen), self._frozen_lens[1])))
        return list(frozen)

    def _account_garbage(self, cp: Checkpoint) -> None:
        found = collect_saving_garbage()  # counted, then as unreachable as before
        ids: set[int] = set()
        total = 0
        per_site = cp.garbage_site_bytes
        from memlens.heap.doctor.sites import object_frames

        for obj in found:
            frames = object_frames(obj)
            site = self.site_of(frames) if frames else None
            if site is OWN:
                continue
            ids.add(id(obj))
            size = sys.getsizeof(obj, 0)
            total += size
            if site is not None:
                per_site[site] = per_site.get(site, 0) + size
        cp.garbage_objects = len(found)
        cp.garbage_bytes = total
        self.last_garbage_ids = ids
        del found
