"""Leak alerts: a steady leak is found within minutes; plateaus, spikes and noise are not."""

from __future__ import annotations

import math

import pytest

from memlens.core.errors import NotFoundError
from memlens.service.leaks import assess_growth
from tests.service.helpers import MB, Workload, make_monitor, run_for

BASE = 300 * MB


@pytest.mark.parametrize("mode", ["production", "standard"])
def test_steady_1mb_per_min_leak_alerts_within_minutes(mode: str) -> None:
    work = Workload(lambda t: BASE + t / 60 * MB)
    monitor = make_monitor(work, mode=mode).start(thread=False)
    sampled = monitor.heapwatch.sampling  # standard mode samples allocation sites
    alerts_at = run_for(monitor, work, 30 * 60)
    monitor.stop()
    assert alerts_at, "a 1 MB/min leak raised no alert in 30 minutes"
    # Warm-up (3 min) plus the minimum evidence span (2 min) plus one check interval.
    assert alerts_at[0] <= 6 * 60
    (leak,) = monitor.get_active_leaks()
    assert leak["component"] == "process"
    assert 0.8 < leak["growth_rate_mb_per_min"] < 1.25
    assert leak["id"].startswith("leak-")
    assert leak["first_seen"].endswith("+00:00")
    # 2000 MB critical threshold, ~330 MB now, 1 MB/min: about 28 hours away.
    hours = leak["projected_seconds_to_critical"] / 3600
    assert 20 < hours < 32
    if sampled:  # sites are known, and none grows with the (synthetic) RSS
        assert "No Python allocation site grows" in leak["recommendation"]
    else:  # no sites at all: the advice is to turn them on
        assert "tracemalloc" in leak["recommendation"]


@pytest.mark.parametrize("mode", ["production", "standard"])
def test_cache_warming_up_then_plateauing_raises_nothing(mode: str) -> None:
    # Fills 80 MB during the first two minutes, then holds (with spikes and noise).
    work = Workload(lambda t: BASE + min(t, 120) / 120 * 80 * MB)
    monitor = make_monitor(work, mode=mode).start(thread=False)
    assert run_for(monitor, work, 3 * 3600) == []
    assert monitor.leaks.total_alerts == 0
    monitor.stop()


def test_slow_sawtooth_with_spikes_raises_nothing() -> None:
    # A batch job every two minutes: memory climbs 20 MB, then is released.
    work = Workload(lambda t: BASE + (t % 120) / 120 * 20 * MB)
    monitor = make_monitor(work, mode="standard", memory_growth_rate_threshold_mb_per_min=0.5)
    monitor.start(thread=False)
    assert run_for(monitor, work, 2 * 3600) == []
    monitor.stop()


def test_growth_below_the_minimum_rate_raises_nothing() -> None:
    work = Workload(lambda t: BASE + t / 60 * 0.2 * MB)
    monitor = make_monitor(work, mode="standard").start(thread=False)
    assert run_for(monitor, work, 40 * 60) == []
    monitor.stop()


def test_leak_that_stops_is_cleared_and_emits_leak_cleared() -> None:
    work = Workload(lambda t: BASE + min(t, 20 * 60) / 60 * 2 * MB)
    monitor = make_monitor(work, mode="standard").start(thread=False)
    events: list[object] = []
    monitor.subscribe(events.append)
    run_for(monitor, work, 20 * 60)
    assert monitor.get_active_leaks()
    run_for(monitor, work, 40 * 60)
    assert monitor.get_active_leaks() == []
    monitor.events.flush()
    names = [type(e).__name__ for e in events]
    assert "LeakSuspected" in names
    cleared = [e for e in events if type(e).__name__ == "LeakCleared"]
    assert cleared and cleared[0].reason == "stopped"  # type: ignore[attr-defined]
    monitor.stop()


def test_clear_leak_alerts_needs_fresh_evidence() -> None:
    work = Workload(lambda t: BASE + t / 60 * MB)
    monitor = make_monitor(work, mode="standard").start(thread=False)
    run_for(monitor, work, 10 * 60)
    (leak,) = monitor.get_active_leaks()
    with pytest.raises(NotFoundError):
        monitor.clear_leak_alerts("leak-nope")
    assert monitor.clear_leak_alerts(leak["id"]) == 1
    assert monitor.get_active_leaks() == []
    # The leak continues: it comes back, but only after new evidence accumulates.
    again = run_for(monitor, work, 10 * 60)
    assert again and again[0] - 10 * 60 >= 120
    assert monitor.get_active_leaks()[0]["id"] != leak["id"]
    assert monitor.clear_leak_alerts() == 1
    monitor.stop()


def test_assess_growth_verdicts() -> None:
    ts = [float(i) for i in range(600)]
    rate = 1 * MB / 60
    growing = assess_growth(ts, [BASE + rate * t for t in ts], min_bucket=3, min_rate=rate / 2)
    assert growing.growing and math.isclose(growing.slope, rate, rel_tol=0.05)
    flat = assess_growth(ts, [BASE] * 600, min_bucket=3, min_rate=rate / 2)
    assert not flat.growing and flat.reason == "no growth"
    short = assess_growth(ts[:60], [BASE + rate * t for t in ts[:60]], min_bucket=3, min_rate=0)
    assert not short.growing and short.reason == "not enough data"
    saturating = assess_growth(
        ts,
        [BASE + 50 * MB * (1 - math.exp(-t / 120)) for t in ts],
        min_bucket=3,
        min_rate=rate / 10,
    )
    assert not saturating.growing and saturating.reason in ("plateaued", "decelerating")
