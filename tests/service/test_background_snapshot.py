"""Snapshots off the sampling thread: the cadence holds, skips and cut-short ones are said.

No timing decides a result: a snapshot is held back by an event the test controls,
and every wait has a generous timeout that only guards against a hang.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from memlens.core.config import Config
from memlens.service import Monitor
from memlens.service.components import HeapWatch
from memlens.service.events import PerformanceThresholdExceeded
from tests.service.helpers import MB


def _wait(predicate: Any, timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


class Held:
    """Wraps ``HeapMeter.snapshot`` so that it waits until released."""

    def __init__(self, watch: HeapWatch) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self._real = watch.heap.snapshot
        watch.heap.snapshot = self  # type: ignore[method-assign]

    def __call__(self) -> Any:
        self.entered.set()
        self.release.wait(60)
        return self._real()


def test_a_snapshot_due_while_one_runs_is_skipped_and_said() -> None:
    watch = HeapWatch(depth=4, components={"tests": "tests"}, tracing=True)
    watch.start()
    try:
        held = Held(watch)
        assert watch.take_in_background(0.0, budget=600.0) == {}
        assert held.entered.wait(60)
        assert watch.take_in_background(1.0, budget=600.0) == {}  # still running
        assert watch.skipped == 1 and watch.to_dict()["snapshots_skipped"] == 1
        skip = watch.to_dict()["last_snapshot_skip"]
        assert skip["what"] == "skipped" and "still being processed" in skip["reason"]
        held.release.set()
        assert watch.wait_background(60)
        assert watch.snapshots == 1
        # The finished snapshot's component values come with the next call.
        values = watch.take_in_background(2.0, budget=600.0)
        assert set(values) == {"component.tests"}
        assert watch.wait_background(60) and watch.snapshots == 2
    finally:
        watch.stop()


def test_a_snapshot_past_its_time_box_is_dropped_and_said() -> None:
    watch = HeapWatch(depth=4, tracing=True)
    watch.start()
    try:
        held = Held(watch)
        watch.take_in_background(0.0, budget=0.0)
        held.release.set()  # released at once; the (zero) box is over by then anyway
        assert watch.wait_background(60)
        assert watch.snapshots == 0 and watch.cut_short == 1
        skip = watch.to_dict()["last_snapshot_skip"]
        assert skip["what"] == "cut short" and "time box" in skip["reason"]
        assert watch.take_in_background(1.0, budget=0.0) == {}  # nothing kept from it
    finally:
        watch.wait_background(60)
        watch.stop()


@pytest.mark.parametrize("mode", ["debug"])
def test_samples_and_thresholds_go_on_while_a_snapshot_is_held(mode: str) -> None:
    rss = {"rss": 10 * MB}
    mon = Monitor(
        Config(
            mode=mode,
            persist_history=False,
            sampling_interval=0.01,
            snapshot_interval=0.01,
            memory_warning_threshold_mb=50,
            memory_critical_threshold_mb=100,
        ),
        readers=[lambda: dict(rss)],
    )
    crossed: list[Any] = []
    mon.events.subscribe(crossed.append)
    held = Held(mon.heapwatch)
    mon.start()
    try:
        assert held.entered.wait(60)  # a snapshot is being "processed" on its worker
        before = mon.samples
        assert _wait(lambda: mon.samples >= before + 5), "the sampling thread stalled"
        rss["rss"] = 200 * MB  # a critical threshold crossed meanwhile still fires
        assert _wait(lambda: any(isinstance(e, PerformanceThresholdExceeded) for e in crossed)), (
            crossed
        )
        assert _wait(lambda: mon.heapwatch.skipped >= 1)
        assert mon.heapwatch.snapshots == 0
        from memlens.service.readout import debug_snapshot

        said = debug_snapshot(mon)["snapshots"]  # what /debug/memory serves
        assert said["skipped"] >= 1 and said["last_skip"]["what"] == "skipped"
    finally:
        held.release.set()
        mon.stop()
    # The held snapshot ran far past its time box (one 0.01 s interval): dropped.
    assert mon.heapwatch.cut_short >= 1 and mon.heapwatch.snapshots == 0
