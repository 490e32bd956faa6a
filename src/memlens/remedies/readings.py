"""One memory reading for remedies: RSS, the C allocator, the traced Python heap.

Each remedy reports what it reclaimed in three figures, because each tells a
different part of the story: ``rss`` (what the OS sees; the allocator may keep
freed memory), ``allocator_in_use`` (glibc's bytes handed out, so frees show even
when RSS does not move) and ``traced`` (Python objects, when tracemalloc is on).
A reading costs about 20 µs (``/proc/self/status`` plus ``mallinfo2``).
"""

from __future__ import annotations

import tracemalloc
from dataclasses import asdict, dataclass
from typing import Any

from memlens.heap.process_meter import ProcessMeter
from memlens.remedies.allocator import allocator_stats

_process = ProcessMeter()


@dataclass(frozen=True)
class MemoryReading:
    """Bytes at one moment; ``None`` where a source is unavailable."""

    rss: int
    allocator_in_use: int | None
    allocator_free: int | None
    traced: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_memory() -> MemoryReading:
    """Read all three sources now."""
    try:
        rss = int(_process.read().get("rss", 0))
    except OSError:
        rss = 0
    alloc = allocator_stats()
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
    return MemoryReading(
        rss=rss,
        allocator_in_use=alloc.in_use if alloc is not None else None,
        allocator_free=alloc.free if alloc is not None else None,
        traced=traced,
    )


@dataclass(frozen=True)
class Reclaimed:
    """What went away between two readings (positive = freed)."""

    rss: int
    allocator: int | None
    traced: int | None

    @classmethod
    def between(cls, before: MemoryReading, after: MemoryReading) -> Reclaimed:
        def diff(a: int | None, b: int | None) -> int | None:
            return a - b if a is not None and b is not None else None

        return cls(
            rss=before.rss - after.rss,
            allocator=diff(before.allocator_in_use, after.allocator_in_use),
            traced=diff(before.traced, after.traced),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
