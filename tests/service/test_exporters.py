"""Prometheus and OpenTelemetry round trips: what we export is what a scraper reads."""

from __future__ import annotations

import gc
import sys

import pytest

from memlens.core.clock import ManualClock
from memlens.core.config import Config
from memlens.service import Monitor
from memlens.service import metrics as metrics_mod
from tests.service.helpers import MB

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

READING = {
    "rss": 123 * MB,
    "vms": 456 * MB,
    "peak_rss": 130 * MB,
    "swap": 0,
    "uss": 100 * MB,
    "pss": 110 * MB,
}


@pytest.fixture
def monitor() -> Monitor:
    mon = Monitor(
        Config(mode="standard", persist_history=False, components={"engine": "myapp.engine"}),
        clock=ManualClock(),
        readers=[lambda: dict(READING)],
    )
    mon.start(thread=False)
    gc.collect()  # something for the GC counters
    yield mon
    mon.stop()


def parsed(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample_value(family: object, name: str, **labels: str) -> float:
    for s in family.samples:  # type: ignore[attr-defined]
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise AssertionError(f"no sample {name} {labels}")


def test_collector_round_trip_through_prometheus_client(monitor: Monitor) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from memlens.service.prometheus import register

    registry = CollectorRegistry()
    register(monitor, registry)
    gc.disable()  # so the GC counters cannot move between the scrape and the check
    try:
        families = parsed(generate_latest(registry).decode())
        stats = monitor.gc_stats()
    finally:
        gc.enable()
    assert (
        sample_value(families["memlens_resident_memory_bytes"], "memlens_resident_memory_bytes")
        == 123 * MB
    )
    assert (
        sample_value(families["memlens_unique_memory_bytes"], "memlens_unique_memory_bytes")
        == 100 * MB
    )
    collections = families["memlens_gc_collections"]
    assert collections.type == "counter"  # type: ignore[attr-defined]
    expected = {str(g.generation): g.collections for g in stats}
    for gen, count in expected.items():
        assert sample_value(collections, "memlens_gc_collections_total", generation=gen) == count
    assert sum(expected.values()) >= 1
    pauses = families["memlens_gc_pause_seconds"]
    assert pauses.type == "histogram"  # type: ignore[attr-defined]
    gen2 = [g for g in stats if g.generation == 2][0]
    assert (
        sample_value(pauses, "memlens_gc_pause_seconds_bucket", generation="2", le="+Inf")
        == gen2.collections
    )
    assert (
        sample_value(pauses, "memlens_gc_pause_seconds_count", generation="2") == gen2.collections
    )
    comp = families["memlens_component_memory_bytes"]
    assert sample_value(comp, "memlens_component_memory_bytes", component="engine") == 0
    thresholds = families["memlens_memory_threshold_bytes"]
    assert sample_value(thresholds, "memlens_memory_threshold_bytes", level="critical") == 2000 * MB
    assert sample_value(families["memlens_leaks_active"], "memlens_leaks_active") == 0
    for name in families:
        # Base units and no high-cardinality labels.
        assert name.startswith("memlens_")
        for s in families[name].samples:  # type: ignore[attr-defined]
            allowed = {"generation", "le", "level", "component"}
            if name == "memlens_allocation_site_bytes":  # bounded by top_n
                allowed = {"site", "function", "source"}
            assert set(s.labels) <= allowed, name


def test_builtin_exposition_matches_prometheus_client(monitor: Monitor) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from memlens.service.prometheus import register

    registry = CollectorRegistry()
    register(monitor, registry)
    ours = parsed(metrics_mod.render(metrics_mod.collect(monitor)))
    theirs = parsed(generate_latest(registry).decode())
    assert set(ours) == set(theirs)
    skip = {
        "memlens_monitor_sample_seconds",
        "memlens_monitor_history_bytes",
    }  # change between reads
    for name in set(ours) - skip:
        a = sorted((s.name, tuple(sorted(s.labels.items())), s.value) for s in ours[name].samples)  # type: ignore[attr-defined]
        b = sorted((s.name, tuple(sorted(s.labels.items())), s.value) for s in theirs[name].samples)  # type: ignore[attr-defined]
        if name.startswith("memlens_gc"):
            assert [x[:2] for x in a] == [x[:2] for x in b]  # the GC may run between the two reads
        else:
            assert a == b, name


def test_exposition_escapes_label_values() -> None:
    fam = metrics_mod.Family("memlens_x_bytes", "gauge", 'help with "quotes" and \\ and\nnewline')
    fam.add(1.5, {"component": 'we"ird\\name\n'})
    (back,) = text_string_to_metric_families(metrics_mod.render([fam]))
    assert back.samples[0].labels["component"] == 'we"ird\\name\n'
    assert back.samples[0].value == 1.5


def test_opentelemetry_round_trip_with_in_memory_reader(monitor: Monitor) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from memlens.service.otel import instrument

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instrument(monitor, provider)
    gc.disable()  # so the GC counters cannot move between the export and the check
    try:
        data = reader.get_metrics_data()
        expected_gc = {g.generation: g.collections for g in monitor.gc_stats()}
    finally:
        gc.enable()
    points: dict[str, list[object]] = {}
    units: dict[str, str] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name == "memlens"
            for metric in sm.metrics:
                points[metric.name] = list(metric.data.data_points)
                units[metric.name] = metric.unit
    assert points["process.memory.usage"][0].value == 123 * MB  # type: ignore[attr-defined]
    assert points["process.memory.virtual"][0].value == 456 * MB  # type: ignore[attr-defined]
    assert units["process.memory.usage"] == "By"
    assert points["memlens.memory.uss"][0].value == 100 * MB  # type: ignore[attr-defined]
    assert points["memlens.memory.pss"][0].value == 110 * MB  # type: ignore[attr-defined]
    gens = {
        p.attributes["cpython.gc.generation"]: p.value for p in points["cpython.gc.collections"]
    }  # type: ignore[attr-defined]
    assert gens == expected_gc
    comps = {p.attributes["memlens.component"]: p.value for p in points["memlens.component.memory"]}  # type: ignore[attr-defined]
    assert comps == {"engine": 0}
    assert points["memlens.leak.active"][0].value == 0  # type: ignore[attr-defined]
    provider.shutdown()


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from memlens.core.errors import MissingExtraError
    from memlens.service import otel, prometheus

    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.metrics", None)
    mon = Monitor(Config(mode="basic", persist_history=False))
    with pytest.raises(MissingExtraError, match=r"memlens\[prometheus\]"):
        prometheus.MemlensCollector(mon)
    with pytest.raises(MissingExtraError, match=r"memlens\[otel\]"):
        otel.instrument(mon)
