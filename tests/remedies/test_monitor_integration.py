"""The monitor runs the ladder (opt-in), shows its history, and exports remedies' counters."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from memlens.core.clock import ManualClock
from memlens.core.config import Config
from memlens.remedies import registry
from memlens.remedies.caches import memoize
from memlens.remedies.ladder import RecoveryLadder
from memlens.remedies.pools import MemoryPool
from memlens.remedies.readings import MemoryReading
from memlens.service import Monitor
from memlens.service import metrics as metrics_mod

MB = 1024 * 1024


class Rss:
    def __init__(self, value: int) -> None:
        self.value = value

    def read(self) -> dict[str, float]:
        return {"rss": float(self.value)}

    def reading(self) -> MemoryReading:
        return MemoryReading(self.value, None, None, None)


def make(rss: Rss, **overrides: object) -> Monitor:
    config = Config(
        mode="production",
        persist_history=False,
        memory_warning_threshold_mb=100,
        memory_critical_threshold_mb=200,
        **overrides,  # type: ignore[arg-type]
    )
    return Monitor(config, clock=ManualClock(), readers=[rss.read])


def test_the_critical_threshold_runs_the_ladder_and_the_monitor_shows_it() -> None:
    rss = Rss(50 * MB)
    monitor = make(rss)
    monitor.start(thread=False)
    try:
        ladder = monitor.enable_recovery(RecoveryLadder(reader=rss.reading, min_interval=0))
        assert ladder.target_bytes == 100 * MB  # the warning threshold
        freed = []

        def compress() -> str:
            rss.value -= 150 * MB  # the context memory gave back a lot
            freed.append(1)
            return "compacted"

        ladder.register_context_compressor(compress)
        rss.value = 240 * MB
        monitor.sample_now()  # crosses warning and critical
        monitor.events.flush()
        assert ladder.wait(10)
    finally:
        monitor.stop()
    history = monitor.recovery_history()
    assert len(history) == 1 and freed == [1]
    run = history[0]
    assert run["reason"].startswith("critical threshold")
    assert [s["step"] for s in run["steps"]] == ["clear caches", "compress context"]
    assert run["reclaimed"]["rss"] == 150 * MB
    assert monitor.debug_snapshot()["recovery"][0]["outcome"].startswith("below the target")


def test_recovery_is_opt_in_and_can_be_enabled_by_config() -> None:
    rss = Rss(50 * MB)
    off = make(rss)
    off.start(thread=False)
    off.stop()
    assert off.recovery is None and off.recovery_history() == []
    on = make(rss, enable_recovery=True)
    on.start(thread=False)
    try:
        assert isinstance(on.recovery, RecoveryLadder)
        on.disable_recovery()
        rss.value = 300 * MB
        on.sample_now()
        on.events.flush()
        assert on.recovery.runs == 0  # detached: no trigger
    finally:
        on.stop()


def test_a_leak_alert_triggers_the_ladder() -> None:
    rss = Rss(50 * MB)
    monitor = make(rss)
    ladder = RecoveryLadder(reader=rss.reading, min_interval=0)
    monitor.enable_recovery(ladder, on_critical=False)
    from memlens.service.events import LeakSuspected

    monitor.start(thread=False)
    try:
        monitor.events.publish(LeakSuspected(0.0, "leak-1", "process", 2.0, "bound the cache"))
        monitor.events.flush()
        assert ladder.wait(10)
    finally:
        monitor.stop()
    assert ladder.history[0].reason == "leak alert leak-1 in process"


def test_prometheus_exposition_has_cache_and_pool_counters() -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    @memoize(name="exported.render", max_bytes=None, sizeof=len)
    def render(n: int) -> bytes:
        return bytes(n)

    render(100)
    render(100)
    pool = MemoryPool(name="exported.pool")
    pool.put("conn", object())
    rss = Rss(50 * MB)
    monitor = make(rss)
    monitor.start(thread=False)
    try:
        text = metrics_mod.render(metrics_mod.collect(monitor))
    finally:
        monitor.stop()
    families = {f.name: f for f in text_string_to_metric_families(text)}

    def value(family: str, sample: str, **labels: str) -> float:
        for s in families[family].samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
        raise AssertionError(f"{sample} {labels} missing")

    assert value("memlens_cache_hits", "memlens_cache_hits_total", cache="exported.render") == 1
    assert value("memlens_cache_bytes", "memlens_cache_bytes", cache="exported.render") == 100
    assert value("memlens_pool_idle", "memlens_pool_idle", pool="exported.pool") == 1
    assert prometheus_client is not None
    del render, pool
    gc.collect()


def test_opentelemetry_exports_cache_counters() -> None:
    pytest.importorskip("opentelemetry.sdk")

    @memoize(name="otel.memo", max_bytes=None)
    def square(n: int) -> int:
        return n * n

    square(3)
    square(3)
    _, points = exported(make(Rss(50 * MB)))
    hits = {p.attributes["memlens.cache"]: p.value for p in points["memlens.cache.hits"]}
    assert hits["otel.memo"] == 1


def exported(monitor: Monitor) -> tuple[str, dict[str, list[Any]]]:
    """What ``monitor`` exports: the Prometheus text, and the OTel data points by name."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from memlens.service.otel import instrument

    monitor.start(thread=False)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        text = metrics_mod.render(metrics_mod.collect(monitor))
        instrument(monitor, provider)
        data = reader.get_metrics_data()
    finally:
        monitor.stop()
        provider.shutdown()
    points = {
        m.name: list(m.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    return text, points


def _ladder_with_known_steps() -> RecoveryLadder:
    """Two runs: the cache step frees 30 MB each time, the second run stops after it."""
    rss = Rss(300 * MB)
    ladder = RecoveryLadder(reader=rss.reading, min_interval=0)

    def clear() -> int:
        rss.value -= 30 * MB
        return 1

    def broken() -> None:
        raise RuntimeError("no luck")

    ladder.register_cache(clear)
    ladder.add_step("broken", broken, cost=35)
    ladder.run("first", target_bytes=100 * MB)  # every step runs; still above
    ladder.run("second", target_bytes=250 * MB)  # 240 MB after clearing: stops there
    return ladder


def test_each_ladder_step_has_its_own_counters() -> None:
    ladder = _ladder_with_known_steps()
    counters = ladder.step_counters()
    assert list(counters)[:3] == ["clear caches", "compress context", "gc.collect"]
    cache = counters["clear caches"]
    assert cache["runs"] == 2 and cache["stopped"] == 1 and cache["reclaimed"] == 60 * MB
    assert cache["duration"] > 0 and cache["longest_hold"] >= 0
    assert counters["compress context"]["skipped"] == 1  # no compressor; run 2 stopped before
    assert counters["gc.collect"]["runs"] == 1 and counters["broken"]["errors"] == 1
    assert counters["recycle"]["skipped"] == 1  # no hook; the second run never got there
    assert set(cache) == {m.key for m in registry.METRICS["recovery_step"]}
    ladder.remove_step("broken")
    assert "broken" not in {n for k, n, _ in registry.snapshot() if k == "recovery_step"}


def test_prometheus_and_opentelemetry_export_per_step_counters() -> None:
    pytest.importorskip("prometheus_client")
    pytest.importorskip("opentelemetry.sdk")
    from prometheus_client.parser import text_string_to_metric_families

    for other in registry.instruments("recovery_step"):  # ladders left by earlier tests
        registry.unregister(other)
    ladder = _ladder_with_known_steps()
    text, data = exported(make(Rss(50 * MB)))
    samples = {
        (s.name, s.labels.get("recovery_step")): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    assert samples[("memlens_recovery_step_runs_total", "clear caches")] == 2
    assert samples[("memlens_recovery_step_reclaimed_bytes_total", "clear caches")] == 60 * MB
    assert samples[("memlens_recovery_step_errors_total", "broken")] == 1
    assert samples[("memlens_recovery_step_skipped_total", "compress context")] == 1
    assert ("memlens_recovery_step_duration_seconds_total", "gc.collect") in samples
    assert ("memlens_recovery_step_longest_hold_seconds", "gc.collect") in samples
    points = {
        name: {p.attributes["memlens.recovery_step"]: p.value for p in found}
        for name, found in data.items()
        if name.startswith("memlens.recovery_step.")
    }
    assert points["memlens.recovery_step.runs"]["clear caches"] == 2
    assert points["memlens.recovery_step.reclaimed"]["clear caches"] == 60 * MB
    assert points["memlens.recovery_step.stopped"]["clear caches"] == 1
    del ladder
