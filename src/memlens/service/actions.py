"""What a monitor does on request: time an operation, force a garbage collection."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from memlens.core.errors import MemlensError
from memlens.core.record import asdict, record
from memlens.service.events import MemoryOperationCompleted, MemoryOperationStarted

if TYPE_CHECKING:
    from memlens.service.monitor import Monitor


@record(frozen=True)
class GcResult:
    """What ``force_garbage_collection()`` achieved."""

    generation: int
    collected_objects: int
    uncollectable_objects: int
    pause_seconds: float
    rss_before: int
    rss_after: int
    bytes_freed: int  # RSS released to the OS; the allocator may keep freed memory
    traced_freed: int | None  # Python heap bytes freed (tracemalloc on), else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def track_operation(mon: Monitor, name: str) -> Iterator[int]:
    """Emit ``MemoryOperationStarted``/``Completed`` around a block (RSS delta, time)."""
    op_id = next(mon._op_ids)
    before = mon.process.read().get("rss", 0)
    traced_before = mon.heapwatch.heap.read().get("traced") if mon.heapwatch.tracing else None
    start = time.perf_counter()
    mon.events.publish(MemoryOperationStarted(mon.clock.wall(), name, op_id, before))
    error: str | None = None
    try:
        yield op_id
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        duration = time.perf_counter() - start
        after = mon.process.read().get("rss", 0)
        traced_delta = None
        if traced_before is not None:
            traced_delta = mon.heapwatch.heap.read().get("traced", 0) - traced_before
        mon.events.publish(
            MemoryOperationCompleted(
                mon.clock.wall(),
                name,
                op_id,
                duration,
                after,
                after - before,
                traced_delta,
                error,
            )
        )


def force_garbage_collection(mon: Monitor, generation: int = 2) -> GcResult:
    """Run ``gc.collect(generation)`` and report what it freed and how long it paused."""
    if not 0 <= generation < len(gc.get_count()):
        raise MemlensError(f"invalid generation {generation}: use 0 to {len(gc.get_count()) - 1}")
    rss_before = mon.process.read().get("rss", 0)
    tracing = mon.heapwatch.heap.tracing
    traced_before = mon.heapwatch.heap.read().get("traced", 0) if tracing else 0
    garbage_before = len(gc.garbage)
    began = time.perf_counter()
    collected = gc.collect(generation)
    pause = time.perf_counter() - began
    rss_after = mon.process.read().get("rss", 0)
    traced_freed = None
    if tracing:
        traced_freed = traced_before - mon.heapwatch.heap.read().get("traced", 0)
    return GcResult(
        generation=generation,
        collected_objects=collected,
        uncollectable_objects=len(gc.garbage) - garbage_before,
        pause_seconds=pause,
        rss_before=rss_before,
        rss_after=rss_after,
        bytes_freed=max(0, rss_before - rss_after),
        traced_freed=traced_freed,
    )
