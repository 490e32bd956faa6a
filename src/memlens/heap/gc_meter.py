"""GC meter: collections, collected/uncollectable objects and pauses per generation.

Installs one callback in ``gc.callbacks``; its cost is two ``perf_counter`` calls
and a few additions per collection, nothing between collections. ``read()`` is a
few dictionary reads. The number of generations is taken from the interpreter
(``len(gc.get_count())``), never assumed to be three.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from typing import Any

from memlens.core.session import GcGenerationStats

# Upper bounds of the pause histogram, in seconds; the last bucket is "+Inf".
PAUSE_BUCKETS: tuple[float, ...] = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)


def _bucket_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else f"{bound:g}"


class GcMeter:
    """Counts GC activity from the moment :meth:`start` is called."""

    name = "gc"

    def __init__(self) -> None:
        self.generations = len(gc.get_count())
        self._lock = threading.Lock()
        self._reset()
        self._started_at: float | None = None
        self._installed = False

    def _reset(self) -> None:
        n = self.generations
        self.collections = [0] * n
        self.collected = [0] * n
        self.uncollectable = [0] * n
        self.pause_total = [0.0] * n
        self.pause_max = [0.0] * n
        self.histogram = [[0] * (len(PAUSE_BUCKETS) + 1) for _ in range(n)]

    def start(self) -> None:
        if not self._installed:
            self._reset()
            gc.callbacks.append(self._callback)
            self._installed = True

    def stop(self) -> None:
        if self._installed:
            with contextlib.suppress(ValueError):  # someone cleared gc.callbacks
                gc.callbacks.remove(self._callback)
            self._installed = False

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_at = time.perf_counter()
            return
        started, self._started_at = self._started_at, None
        gen = int(info.get("generation", 0))
        if gen >= self.generations:  # an interpreter that grew a generation
            return
        pause = time.perf_counter() - started if started is not None else 0.0
        self.collections[gen] += 1
        self.collected[gen] += int(info.get("collected", 0))
        self.uncollectable[gen] += int(info.get("uncollectable", 0))
        self.pause_total[gen] += pause
        if pause > self.pause_max[gen]:
            self.pause_max[gen] = pause
        for i, bound in enumerate(PAUSE_BUCKETS):
            if pause <= bound:
                self.histogram[gen][i] += 1
                break
        else:
            self.histogram[gen][-1] += 1

    def read(self) -> dict[str, float]:
        """Totals since start: collections, collected, uncollectable, pause seconds."""
        return {
            "gc_collections": float(sum(self.collections)),
            "gc_collected": float(sum(self.collected)),
            "gc_uncollectable": float(sum(self.uncollectable)),
            "gc_pause": sum(self.pause_total),
            "gc_objects": float(sum(gc.get_count())),
        }

    def stats(self) -> list[GcGenerationStats]:
        """Per-generation statistics, with a cumulative-free pause histogram."""
        bounds = (*PAUSE_BUCKETS, float("inf"))
        return [
            GcGenerationStats(
                generation=g,
                collections=self.collections[g],
                collected=self.collected[g],
                uncollectable=self.uncollectable[g],
                pause_total=self.pause_total[g],
                pause_max=self.pause_max[g],
                pause_histogram={
                    _bucket_label(b): c for b, c in zip(bounds, self.histogram[g]) if c
                },
            )
            for g in range(self.generations)
        ]
