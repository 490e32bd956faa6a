"""Heap meter: the Python heap as tracemalloc sees it, attributed to user code.

Costs: ``read()`` calls ``tracemalloc.get_traced_memory()`` (about 1 µs). While
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

import linecache  # noqa: F401 - imported before tracing so its own allocations are not traced
import tracemalloc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from memlens.core.session import AllocationSite, ComponentUsage
from memlens.heap.frames import MEMLENS_DIR, ComponentMap, innermost_user_index

DEFAULT_DEPTH = 25

_SELF_FILTERS = (
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
    # memlens's own sampling (series buffers, readings) is not the user's memory.
    tracemalloc.Filter(False, MEMLENS_DIR + "*"),
)


@dataclass
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
        self._function_cache: dict[tuple[str, int], str] = {}
        # Grouping a snapshot by traceback is O(live traces); sites and component
        # totals of the same snapshots share one grouping. Two entries: end + baseline.
        self._stats_cache: list[tuple[tracemalloc.Snapshot, list[tracemalloc.Statistic]]] = []

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        """Start tracing unless something else already does (then reuse it)."""
        if tracemalloc.is_tracing():
            self.depth = tracemalloc.get_traceback_limit()
            return
        tracemalloc.start(self.depth)
        self._started_here = True

    def stop(self) -> None:
        """Stop tracing if this meter started it."""
        if self._started_here and tracemalloc.is_tracing():
            tracemalloc.stop()
        self._started_here = False
        self._stats_cache = []

    @property
    def tracing(self) -> bool:
        return tracemalloc.is_tracing()

    # -- reading -----------------------------------------------------------------
    def read(self) -> dict[str, int]:
        """Traced bytes now and the peak since tracing started (cheap)."""
        if not tracemalloc.is_tracing():
            return {}
        current, peak = tracemalloc.get_traced_memory()
        return {"traced": current, "traced_peak": peak}

    def snapshot(self) -> tracemalloc.Snapshot | None:
        if not tracemalloc.is_tracing():
            return None
        return tracemalloc.take_snapshot().filter_traces(_SELF_FILTERS)

    def _statistics(self, snapshot: tracemalloc.Snapshot) -> list[tracemalloc.Statistic]:
        for cached, stats in self._stats_cache:
            if cached is snapshot:
                return stats
        stats = snapshot.statistics("traceback")
        self._stats_cache = [*self._stats_cache[-1:], (snapshot, stats)]
        return stats

    def group_by_site(self, snapshot: tracemalloc.Snapshot) -> dict[tuple[str, int], _SiteAcc]:
        """Sum live memory per innermost user frame."""
        sites: dict[tuple[str, int], _SiteAcc] = {}
        for stat in self._statistics(snapshot):
            frames = stat.traceback
            filenames = [f.filename for f in frames]
            idx = innermost_user_index(filenames)
            frame = frames[idx]
            key = (frame.filename, frame.lineno)
            acc = sites.get(key)
            if acc is None:
                stack = tuple(f"{f.filename}:{f.lineno}" for f in reversed(frames[: idx + 1]))
                acc = sites[key] = _SiteAcc(stack=stack)
            acc.size += stat.size
            acc.count += stat.count
        return sites

    def sites(
        self,
        snapshot: tracemalloc.Snapshot,
        baseline: tracemalloc.Snapshot | None = None,
        limit: int = 10,
    ) -> list[AllocationSite]:
        """Top ``limit`` user-code sites, by growth since ``baseline`` if given, else by size."""
        now = self.group_by_site(snapshot)
        before = self.group_by_site(baseline) if baseline is not None else {}
        out = []
        for key, acc in now.items():
            prev = before.get(key)
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
        sort_key = (lambda s: s.size_diff) if baseline is not None else (lambda s: s.size)
        out.sort(key=sort_key, reverse=True)
        return out[:limit]

    def component_totals(self, snapshot: tracemalloc.Snapshot) -> dict[str, tuple[int, int]]:
        """``component -> (bytes, blocks)`` for the whole snapshot."""
        totals: dict[str, tuple[int, int]] = {}
        if not self.components:
            return totals
        for stat in self._statistics(snapshot):
            name = self.components.component_of_stack([f.filename for f in stat.traceback])
            if name is None:
                continue
            size, count = totals.get(name, (0, 0))
            totals[name] = (size + stat.size, count + stat.count)
        return totals

    def function_name(self, filename: str, lineno: int) -> str:
        """Best-effort name of the function containing a line (for reports)."""
        key = (filename, lineno)
        cached = self._function_cache.get(key)
        if cached is not None:
            return cached
        name = ""
        lines = linecache.getlines(filename)
        for i in range(min(lineno, len(lines)) - 1, -1, -1):
            stripped = lines[i].lstrip()
            if stripped.startswith(("def ", "async def ")):
                name = stripped.split("def ", 1)[1].split("(", 1)[0]
                break
            if stripped.startswith("class ") and i < lineno - 1:
                break
        self._function_cache[key] = name or "<module>"
        return self._function_cache[key]


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
