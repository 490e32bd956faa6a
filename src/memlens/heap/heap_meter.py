"""Heap meter: the Python heap as tracemalloc sees it, attributed to user code.

Costs: ``read()`` calls ``_tracemalloc.get_traced_memory()`` (about 1 µs). While
tracing, every allocation costs more in proportion to the frame depth kept
(the published mean is ~3×). ``snapshot()`` copies every live trace, so its cost
grows with the number of live blocks; sessions take one at the start and one at the
end, the monitor only at its snapshot cadence.

Attribution: each allocation site is reported at the innermost frame in the user's
own code (see :mod:`memlens.heap.frames`), with the call chain into it, so
``json.dumps`` inside ``handle_request`` is charged to the line in
``handle_request``. That is why the default depth is deep (25 frames).
"""

from __future__ import annotations

# The C half of tracemalloc (start/stop/is_tracing/get_traced_memory) is built in;
# tracemalloc.py (Snapshot) pulls in pickle and ~0.6 MiB, so it is imported only when
# tracing starts or a snapshot is taken: the always-on monitor never needs it (#15).
import _tracemalloc
import itertools
import operator
import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tracemalloc

from memlens.core.record import record
from memlens.core.session import AllocationSite, ComponentUsage
from memlens.heap.frames import (
    HOST_FILES,
    MEMLENS_DIR,
    ComponentMap,
    is_user_file,
    user_frame_index,
)
from memlens.heap.native_ext import load_extension
from memlens.heap.peaks import PeakWatch

DEFAULT_DEPTH = 25

Frames = tuple[tuple[str, int], ...]
"""A traceback as tracemalloc stores it: ``(filename, lineno)`` pairs, most recent first."""

_TRACEMALLOC_FILE = os.path.join(os.path.dirname(os.__file__), "tracemalloc.py")
_IMPORTLIB_FILES = frozenset(
    {"<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>"}
)
_TB_OF = operator.itemgetter(2)

# How many meters are using tracemalloc, and whether memlens started it.
_share_lock = threading.Lock()
_users = 0
_started_by_memlens = False
_SIZE_OF = operator.itemgetter(1)


def is_own_frame(filename: str) -> bool:
    """Allocations whose innermost frame is here are memlens's (or tracemalloc's) own."""
    return (
        filename.startswith(MEMLENS_DIR)
        or filename == _TRACEMALLOC_FILE
        or filename in _IMPORTLIB_FILES
        or filename in HOST_FILES
    )


def _memlens_thread(frames: Frames) -> bool:
    """No user frame at all, and memlens below: a memlens thread's own allocation
    (its recorder waiting in ``threading``), not the program's."""
    return not any(is_user_file(f) for f, _ in frames) and any(
        f.startswith(MEMLENS_DIR) for f, _ in frames
    )


_THREADING_FILE = threading.__file__


def _on_memlens_behalf(frames: Frames) -> bool:
    """Allocated by memlens's code through a library or generated code, or by a thread
    starting up before it runs any code of its own.

    Scanning from the most recent frame: memlens reached before any real user file
    means memlens asked for it (the ``threading.Thread`` of a recorder, the
    ``<string>`` a record or dataclass generates while memlens imports, in another thread's
    session); ``<string>``-like frames on the way are not the user's unless the user's
    own code comes first. A traceback only in ``threading.py`` is a thread's start-up.
    """
    for filename, _ in frames:
        if filename.startswith(MEMLENS_DIR) or filename in HOST_FILES:
            return True
        if filename.startswith("<"):
            continue
        if is_user_file(filename):
            return False
    return all(f == _THREADING_FILE for f, _ in frames)


def group_traces(snapshot: tracemalloc.Snapshot) -> list[tuple[Frames, int, int]]:
    """``(frames, bytes, blocks)`` per distinct traceback, without memlens's own blocks.

    Linear in the number of live traces with a small constant: within one snapshot
    equal tracebacks are one shared tuple, so the traces are summed per traceback
    object in one pass (``memlens._tracegroup`` in C, or a C-level sort that brings
    each group together where it is not built). Nothing is allocated per trace, which
    matters because while tracing every allocation is itself traced (a Python loop
    accumulating per trace costs ~1 µs a block). Filtering and attribution then run
    once per distinct traceback, never per trace. Groups come out sorted by frames.
    """
    raw = getattr(snapshot.traces, "_traces", None)
    if raw is None:  # pragma: no cover - private layout changed
        raw = [
            (t.domain, t.size, tuple((f.filename, f.lineno) for f in reversed(t.traceback)))
            for t in snapshot.traces
        ]
    out: list[tuple[Frames, int, int]] = []
    own = is_own_frame
    for frames, size, blocks in _sum_per_traceback(raw):
        if frames and (own(frames[0][0]) or _memlens_thread(frames) or _on_memlens_behalf(frames)):
            continue
        out.append((frames, size, blocks))
    return out


def _sum_per_traceback(raw: list[tuple[object, ...]]) -> list[tuple[Frames, int, int]]:
    """The traces' bytes and blocks per distinct traceback, sorted by frames."""
    native = load_extension("_tracegroup") if isinstance(raw, list) else None
    if native is None:
        return [
            (frames, sum(sizes), len(sizes))
            for frames, group in itertools.groupby(sorted(raw, key=_TB_OF), key=_TB_OF)
            for sizes in (list(map(_SIZE_OF, group)),)
        ]
    merged: dict[Frames, list[int]] = {}
    # Grouped by object identity; equal tracebacks that are distinct objects (a
    # snapshot loaded from a file) are merged by value over the few groups.
    for frames, size, blocks in native.group(raw):
        acc = merged.get(frames)
        if acc is None:
            merged[frames] = [size, blocks]
        else:
            acc[0] += size
            acc[1] += blocks
    return [(frames, acc[0], acc[1]) for frames, acc in sorted(merged.items())]


@record
class _SiteAcc:
    size: int = 0
    count: int = 0
    stack: tuple[str, ...] = ()
    function: str = ""


class HeapMeter:
    """Controls tracemalloc for a session and turns snapshots into user-code sites."""

    name = "heap"

    def __init__(
        self,
        depth: int = DEFAULT_DEPTH,
        components: Mapping[str, str | Iterable[str]] | None = None,
    ) -> None:
        if depth < 1:
            raise ValueError("trace depth must be at least 1")
        self.depth = depth
        self.components = ComponentMap(components)
        self._started_here = False
        self._peak: PeakWatch | None = None
        self._function_cache: dict[tuple[str, int], str] = {}
        # Grouping a snapshot is O(live traces); sites and component totals of the
        # same snapshots share one grouping. Two entries: end + baseline.
        self._groups_cache: list[tuple[tracemalloc.Snapshot, list[tuple[Frames, int, int]]]] = []

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        """Start tracing unless something else already does (then reuse it).

        Meters share tracemalloc: overlapping sessions (``A.start(); B.start();
        A.stop()``) keep tracing until the last meter that memlens started it for
        stops, so B still gets its sites. Tracing started by someone else (``-X
        tracemalloc``, the user) is never stopped by memlens.
        """
        global _users, _started_by_memlens
        with _share_lock:
            if self._started_here:
                return
            # tracemalloc.py and linecache (which sites read) are imported before
            # tracing starts, so their own allocations are not traced; the always-on
            # monitor never traces and never loads them.
            import linecache  # noqa: F401
            import tracemalloc  # noqa: F401

            if not _tracemalloc.is_tracing():
                _tracemalloc.start(self.depth)
                _started_by_memlens = True
            else:
                self.depth = _tracemalloc.get_traceback_limit()
            _users += 1
            self._started_here = True
        self._peak = PeakWatch()

    def stop(self) -> None:
        """Stop tracing when this is the last meter using tracing memlens started."""
        global _users, _started_by_memlens
        with _share_lock:
            if self._started_here:
                _users = max(0, _users - 1)
                if _users == 0 and _started_by_memlens and _tracemalloc.is_tracing():
                    _tracemalloc.stop()
                if _users == 0:
                    _started_by_memlens = False
            self._started_here = False
            self._groups_cache = []
        if self._peak is not None:
            self._peak.close()
            self._peak = None

    def begin_peak(self) -> None:
        """Count ``traced_peak`` from now (the peak of a call, not of the process);
        other meters' peaks are kept (see ``heap/peaks.py``)."""
        if self._peak is not None:
            self._peak.restart()

    @property
    def tracing(self) -> bool:
        return _tracemalloc.is_tracing()

    # -- reading -----------------------------------------------------------------
    def read(self) -> dict[str, int]:
        """Traced bytes now and the peak since this meter started, or since
        :meth:`begin_peak` (cheap)."""
        if not _tracemalloc.is_tracing():
            return {}
        current, peak = _tracemalloc.get_traced_memory()
        if self._peak is not None:
            peak = self._peak.peak()
        return {"traced": current, "traced_peak": peak}

    def snapshot(self) -> tracemalloc.Snapshot | None:
        """The live traces now (memlens's own blocks are dropped when grouping)."""
        if not _tracemalloc.is_tracing():
            return None
        import tracemalloc

        return tracemalloc.take_snapshot()

    def groups(self, snapshot: tracemalloc.Snapshot) -> list[tuple[Frames, int, int]]:
        """:func:`group_traces` of ``snapshot``, cached for the last two snapshots."""
        for cached, groups in self._groups_cache:
            if cached is snapshot:
                return groups
        groups = group_traces(snapshot)
        self._groups_cache = [*self._groups_cache[-1:], (snapshot, groups)]
        return groups

    def group_by_site(self, snapshot: tracemalloc.Snapshot) -> dict[tuple[str, int], _SiteAcc]:
        """Sum live memory per innermost user frame."""
        return sites_of_groups(self.groups(snapshot))

    def sites(
        self,
        snapshot: tracemalloc.Snapshot,
        baseline: tracemalloc.Snapshot | None = None,
        limit: int = 10,
    ) -> list[AllocationSite]:
        """Top ``limit`` user-code sites, by growth since ``baseline`` if given, else by size."""
        now = self.group_by_site(snapshot)
        before = self.group_by_site(baseline) if baseline is not None else {}
        return self.rank_sites(now, before if baseline is not None else None, limit)

    def rank_sites(
        self,
        now: Mapping[tuple[str, int], _SiteAcc],
        before: Mapping[tuple[str, int], _SiteAcc] | None,
        limit: int,
    ) -> list[AllocationSite]:
        """The top ``limit`` of per-site sums, by growth when ``before`` is given."""
        base = before or {}
        rows = []
        for key, acc in now.items():
            prev = base.get(key)
            rows.append(
                (acc.size - prev.size if prev else acc.size, key, acc, prev)
                if before is not None
                else (acc.size, key, acc, prev)
            )
        rows.sort(key=operator.itemgetter(0), reverse=True)
        out = []
        for _, key, acc, prev in rows[:limit]:
            out.append(
                AllocationSite(
                    filename=key[0],
                    lineno=key[1],
                    function=self.function_name(*key),
                    size=acc.size,
                    count=acc.count,
                    size_diff=acc.size - (prev.size if prev else 0),
                    count_diff=acc.count - (prev.count if prev else 0),
                    component=self.components.component_of(key[0]) if self.components else None,
                    stack=list(acc.stack),
                )
            )
        return out

    def component_totals(self, snapshot: tracemalloc.Snapshot) -> dict[str, tuple[int, int]]:
        """``component -> (bytes, blocks)`` for the whole snapshot."""
        return component_totals_of_groups(self.groups(snapshot), self.components)

    def function_name(self, filename: str, lineno: int) -> str:
        """Best-effort name of the function containing a line (for reports).

        The enclosing ``def`` is the nearest one above the line that is indented
        *less* than every line between them: a nested function defined earlier in
        the same body is a sibling, not the container.
        """
        key = (filename, lineno)
        cached = self._function_cache.get(key)
        if cached is not None:
            return cached
        import linecache

        self._function_cache[key] = name = _enclosing_function(linecache.getlines(filename), lineno)
        return name


def _enclosing_function(lines: list[str], lineno: int) -> str:
    if not 1 <= lineno <= len(lines):
        return "<module>"
    target = lines[lineno - 1]
    limit = len(target) - len(target.lstrip())  # a def must be indented less than this
    for i in range(lineno - 2, -1, -1):
        text = lines[i]
        stripped = text.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(text) - len(stripped)
        if indent >= limit:
            continue  # inside a sibling block (or a continuation line)
        if stripped.startswith(("def ", "async def ")):
            return stripped.split("def ", 1)[1].split("(", 1)[0].strip() or "<module>"
        if stripped.startswith("class "):
            return "<module>"  # a class body line (the class name is not a function)
        limit = indent  # an enclosing if/for/with/try: keep looking outwards
        if limit == 0:
            return "<module>"
    return "<module>"


def sites_of_groups(
    groups: Iterable[tuple[Frames, int, int]],
) -> dict[tuple[str, int], _SiteAcc]:
    """Sum ``(frames, bytes, blocks)`` groups per innermost user frame."""
    sites: dict[tuple[str, int], _SiteAcc] = {}
    for frames, size, count in groups:
        if not frames:
            continue
        idx = user_frame_index(frames)
        key = frames[idx]
        acc = sites.get(key)
        if acc is None:
            stack = tuple(f"{f}:{n}" for f, n in frames[idx:] if not is_own_frame(f))
            acc = sites[key] = _SiteAcc(stack=stack)
        acc.size += size
        acc.count += count
    return sites


def component_totals_of_groups(
    groups: Iterable[tuple[Frames, int, int]], components: ComponentMap
) -> dict[str, tuple[int, int]]:
    """``component -> (bytes, blocks)``: each group goes to its innermost component frame."""
    totals: dict[str, tuple[int, int]] = {}
    if not components:
        return totals
    of = components.component_of
    for frames, size, count in groups:
        name = None
        for filename, _ in frames:
            name = of(filename)
            if name is not None:
                break
        if name is None:
            continue
        old_size, old_count = totals.get(name, (0, 0))
        totals[name] = (old_size + size, old_count + count)
    return totals


class ComponentTracker:
    """Current, peak and growth per component across a series of snapshots."""

    def __init__(self) -> None:
        self._first: dict[str, int] = {}
        self._peak: dict[str, int] = {}
        self._last: dict[str, tuple[int, int]] = {}

    def update(self, totals: Mapping[str, tuple[int, int]], names: Iterable[str] = ()) -> None:
        for name in set(totals) | set(names):
            size, count = totals.get(name, (0, 0))
            self._first.setdefault(name, size)
            self._peak[name] = max(self._peak.get(name, 0), size)
            self._last[name] = (size, count)

    def usage(self) -> list[ComponentUsage]:
        return [
            ComponentUsage(
                name=name,
                current=size,
                peak=self._peak[name],
                growth=size - self._first[name],
                count=count,
            )
            for name, (size, count) in sorted(self._last.items(), key=lambda kv: -kv[1][0])
        ]
