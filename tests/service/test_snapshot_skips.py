"""The monitor says when a due heap snapshot was skipped: an event (logged as a
warning), a counter in /metrics and the figures in ``stats()``/``/debug/memory``."""

from __future__ import annotations

import logging
import os
import tracemalloc
from collections.abc import Callable

import pytest

from memlens.core.clock import ManualClock
from memlens.core.config import Config
from memlens.service import Monitor, SnapshotSkipped
from memlens.service import metrics as metrics_mod
from tests.service.helpers import MB


def debug_monitor(clock: ManualClock) -> Monitor:
    mon = Monitor(
        Config(mode="debug", persist_history=False), clock=clock, readers=[lambda: {"rss": MB}]
    )
    events: list[SnapshotSkipped] = []
    mon.subscribe(events.append, [SnapshotSkipped])
    mon.skips = events  # type: ignore[attr-defined]
    return mon


def in_child(work: Callable[[], str]) -> str:
    """Run ``work`` in a forked child; return what it returned."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(w, work().encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return out


def skips_metric(mon: Monitor) -> float:
    fam = metrics_mod.by_name(metrics_mod.collect(mon))["memlens_monitor_snapshots_skipped"]
    return fam.samples[0][2]


def test_a_slow_snapshot_postpones_the_next_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    mon = debug_monitor(clock)
    interval = mon.config.effective_snapshot_interval  # 10 s in debug mode
    caplog.set_level(logging.WARNING, logger="memlens.monitor")
    mon.start(thread=False)
    try:
        assert mon.heapwatch.snapshots == 1
        # As if that snapshot had held the process for 3 s (a heap of millions of
        # objects): the next may start 30 s later, not 10 s.
        mon.heapwatch.last_duration = 3.0
        clock.advance(interval + 1)
        mon.sample_now()
        clock.advance(interval)  # still inside the 30 s: no second report
        mon.sample_now()
        assert mon.heapwatch.snapshots == 1
        mon.events.flush()
        assert len(mon.skips) == 1  # type: ignore[attr-defined]
        event = mon.skips[0]  # type: ignore[attr-defined]
        assert "took 3.00 s" in event.reason and "waits 30 s" in event.reason
        assert event.skipped == 1
        assert any("heap snapshot skipped" in r.getMessage() for r in caplog.records)
        assert skips_metric(mon) == 1
        stats = mon.stats()
        assert stats["snapshots_skipped"] == 1
        assert "took 3.00 s" in stats["last_snapshot_skip"]["reason"]
        assert mon.debug_snapshot()["monitor"]["snapshots_skipped"] == 1
        clock.advance(interval)  # 31 s after the slow one: taken again
        mon.sample_now()
        assert mon.heapwatch.snapshots == 2
        assert mon.heapwatch.last_duration < 3.0  # the real duration of a small snapshot
    finally:
        mon.stop()


def test_tracing_stopped_outside_memlens_is_reported_once_and_recovers() -> None:
    clock = ManualClock()
    mon = debug_monitor(clock)
    interval = mon.config.effective_snapshot_interval
    mon.start(thread=False)
    try:
        tracemalloc.stop()  # the application stops tracing under the monitor
        for _ in range(3):
            clock.advance(interval + 1)
            mon.sample_now()
        mon.events.flush()
        reasons = [e.reason for e in mon.skips]  # type: ignore[attr-defined]
        assert reasons == ["tracemalloc is not tracing (stopped outside memlens)"]
        tracemalloc.start(mon.heapwatch.depth)
        clock.advance(interval + 1)
        mon.sample_now()
        assert mon.heapwatch.snapshots == 2 and skips_metric(mon) == 1
    finally:
        mon.stop()
        if tracemalloc.is_tracing():
            tracemalloc.stop()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_reports_its_deferred_first_snapshot() -> None:
    clock = ManualClock()
    mon = debug_monitor(clock)
    mon.start(thread=False)
    try:

        def child() -> str:
            mon.sample_now()
            mon.events.flush()
            msg = ";".join(
                f"{e.cause}:{e.log_level}:{e.reason}"
                for e in mon.skips  # type: ignore[attr-defined]
            )
            return f"{mon.stats()['snapshots_skipped']}|{msg}"

        out = in_child(child)
        count, _, reason = out.partition("|")
        assert count == "1"
        assert "first snapshot after fork waits one interval" in reason
        # By design in every worker: logged at INFO, not as a warning.
        assert reason.startswith(f"fork:{logging.INFO}:")
        assert mon.stats()["snapshots_skipped"] == 0  # the parent skipped nothing
    finally:
        mon.stop()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_no_snapshot_no_skip_and_fork_returns_before_any_meter_read() -> None:
    """In ``production`` (no snapshots) nothing is reported as skipped, and the child's
    first sample runs on its monitor thread, not inside ``os.fork()``."""
    import threading
    import time

    calls: list[tuple[int, str]] = []

    def reader() -> dict[str, float]:
        calls.append((os.getpid(), threading.current_thread().name))
        return {"rss": MB}

    mon = Monitor(Config(mode="production", persist_history=False), readers=[reader])
    events: list[SnapshotSkipped] = []
    mon.subscribe(events.append, [SnapshotSkipped])
    mon.start()
    try:

        def child() -> str:
            me = os.getpid()
            at_return = [c for c in calls if c[0] == me and c[1] == "MainThread"]
            deadline = time.monotonic() + 60
            while not any(c[0] == me for c in calls) and time.monotonic() < deadline:
                time.sleep(0.01)  # wait for the child's monitor thread to sample
            later = sorted({name for p, name in calls if p == me})
            mon.events.flush()
            return f"{len(at_return)}|{','.join(later)}|{len(events)}"

        out = in_child(child)
        assert out == "0|memlens-monitor|0"
    finally:
        mon.stop()


def test_busy_and_cut_short_snapshots_are_events_too() -> None:
    """Off the sampling thread (``service/components.py``'s worker), a snapshot due
    while one is still processed, and one past its time box, are said as events."""
    import time

    from tests.service.test_background_snapshot import Held

    clock = ManualClock()
    mon = Monitor(
        Config(mode="debug", persist_history=False, snapshot_interval=0.01),
        clock=clock,
        readers=[lambda: {"rss": MB}],
    )
    events: list[SnapshotSkipped] = []
    mon.subscribe(events.append, [SnapshotSkipped])
    held = Held(mon.heapwatch)
    mon.start(thread=False)  # its first sample starts a snapshot on the worker
    try:
        assert held.entered.wait(60)
        clock.advance(1)
        mon.recorder.sample()  # as the sampling thread does: the worker is busy
        time.sleep(0.05)  # so its 0.01 s time box is surely over when it resumes
        held.release.set()  # cut short
        assert mon.heapwatch.wait_background(60)
        mon.events.flush()
        assert [e.cause for e in events] == ["busy", "cut_short"]
        assert [e.skipped for e in events] == [1, 2]
        assert skips_metric(mon) == 2
    finally:
        held.release.set()
        mon.stop()
