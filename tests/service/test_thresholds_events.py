"""Thresholds with hysteresis, events to subscribers and logging, slow subscribers."""

from __future__ import annotations

import logging
import threading

from memlens.core.clock import ManualClock
from memlens.core.config import Config
from memlens.service import (
    MemoryOperationCompleted,
    MemoryOperationStarted,
    Monitor,
    PerformanceThresholdExceeded,
    PerformanceThresholdRecovered,
)
from memlens.service.thresholds import ThresholdTracker
from tests.service.helpers import MB


def scripted_monitor(values: list[float], **overrides: object) -> tuple[Monitor, ManualClock]:
    clock = ManualClock()
    feed = iter(values)
    overrides.setdefault("persist_history", False)
    overrides.setdefault("memory_warning_threshold_mb", 100.0)
    overrides.setdefault("memory_critical_threshold_mb", 200.0)
    monitor = Monitor(Config(**overrides), clock=clock, readers=[lambda: {"rss": next(feed)}])  # type: ignore[arg-type]
    return monitor, clock


def test_tracker_hysteresis_does_not_flap() -> None:
    tracker = ThresholdTracker(100, 200, hysteresis=0.1)
    assert [t.level for t in tracker.update(100)] == ["warning"]
    # Hovering just under the line (inside the 10 % band) changes nothing.
    for value in (99, 101, 95, 100, 91, 99):
        assert tracker.update(value) == []
    assert tracker.state == "warning"
    (down,) = tracker.update(89)
    assert (down.level, down.upward, tracker.state) == ("warning", False, "ok")
    # Straight to critical reports both crossings; back down needs < 180.
    assert [t.level for t in tracker.update(250)] == ["warning", "critical"]
    assert tracker.update(185) == []
    assert [(t.level, t.upward) for t in tracker.update(179)] == [("critical", False)]
    assert tracker.state == "warning"


def test_threshold_events_reach_subscribers_and_logging(caplog: object) -> None:
    values = [v * MB for v in (50, 120, 99, 101, 150, 210, 205, 150, 50)]
    monitor, clock = scripted_monitor(values)
    seen: list[object] = []
    monitor.subscribe(seen.append, [PerformanceThresholdExceeded, PerformanceThresholdRecovered])
    with caplog.at_level(logging.DEBUG, logger="memlens.monitor"):  # type: ignore[attr-defined]
        monitor.start(thread=False)
        for _ in values[1:]:
            clock.advance(monitor.interval)
            monitor.sample_now()
        assert monitor.events.flush(10)
    summary = [(type(e).__name__, e.level) for e in seen]  # type: ignore[attr-defined]
    assert summary == [
        ("PerformanceThresholdExceeded", "warning"),
        ("PerformanceThresholdExceeded", "critical"),
        ("PerformanceThresholdRecovered", "critical"),
        ("PerformanceThresholdRecovered", "warning"),
    ]
    records = [r for r in caplog.records if r.name == "memlens.monitor"]  # type: ignore[attr-defined]
    assert any(
        r.levelno == logging.ERROR and "critical threshold" in r.getMessage() for r in records
    )
    assert any(
        r.levelno == logging.WARNING and "warning threshold" in r.getMessage() for r in records
    )
    assert all(hasattr(r, "memlens_event") for r in records)
    assert monitor.health().checks["threshold_state"] == "ok"
    monitor.stop()


def test_health_reflects_thresholds() -> None:
    monitor, clock = scripted_monitor([150 * MB, 250 * MB])
    monitor.start(thread=False)
    health = monitor.health()
    # Not sampling on a thread (thread=False) counts as a warning too.
    assert health.status == "warning"
    assert any("warning threshold" in r for r in health.reasons)
    clock.advance(1)
    monitor.sample_now()
    health = monitor.health()
    assert health.status == "critical" and health.code == 2
    assert any("critical threshold" in r for r in health.reasons)
    monitor.stop()


def test_slow_subscriber_never_stalls_sampling() -> None:
    # Every sample crosses a threshold (no hysteresis): many events, a tiny queue.
    values = [(250 if i % 2 else 50) * MB for i in range(201)]
    monitor, clock = scripted_monitor(values, threshold_hysteresis=0.0, event_queue_size=4)
    release = threading.Event()
    got: list[object] = []

    def slow(event: object) -> None:
        release.wait()
        got.append(event)

    monitor.subscribe(slow)
    monitor.start(thread=False)

    def sample_all() -> None:
        for _ in values[1:]:
            clock.advance(monitor.interval)
            monitor.sample_now()

    sampler = threading.Thread(target=sample_all)
    sampler.start()
    sampler.join(60)
    finished = not sampler.is_alive()
    release.set()
    assert finished, "sampling blocked behind a slow subscriber"
    assert monitor.samples == len(values)
    assert monitor.events.dropped > 0
    assert monitor.events.flush(10)
    published = 4 * 100  # warning+critical up, critical+warning down, per cycle
    assert len(got) + monitor.events.dropped == published
    monitor.stop()


def test_failing_subscriber_is_isolated() -> None:
    monitor, clock = scripted_monitor([50 * MB, 150 * MB])
    good: list[object] = []

    def bad(event: object) -> None:
        raise RuntimeError("boom")

    monitor.subscribe(bad)
    monitor.subscribe(good.append)
    monitor.start(thread=False)
    clock.advance(1)
    monitor.sample_now()
    assert monitor.events.flush(10)
    assert len(good) == 1 and monitor.events.subscriber_errors == 1
    monitor.stop()


def test_track_operation_emits_started_and_completed() -> None:
    monitor = Monitor(Config(mode="production", persist_history=False)).start(thread=False)
    seen: list[object] = []
    unsubscribe = monitor.subscribe(seen.append, [MemoryOperationStarted, MemoryOperationCompleted])
    with monitor.track_operation("load-model") as op_id:
        blob = bytearray(8 * MB)
    try:
        with monitor.track_operation("explode"):
            raise ValueError("bad input")
    except ValueError:
        pass
    assert monitor.events.flush(10)
    unsubscribe()
    assert [type(e).__name__ for e in seen] == [
        "MemoryOperationStarted",
        "MemoryOperationCompleted",
        "MemoryOperationStarted",
        "MemoryOperationCompleted",
    ]
    done = seen[1]
    assert done.operation == "load-model" and done.operation_id == op_id  # type: ignore[attr-defined]
    assert done.duration >= 0 and done.error is None  # type: ignore[attr-defined]
    assert seen[3].error == "ValueError: bad input"  # type: ignore[attr-defined]
    assert len(blob) == 8 * MB
    monitor.stop()
