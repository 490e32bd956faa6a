"""Prometheus and OpenTelemetry round trips: what we export is what a scraper reads."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
    families = parsed(generate_latest(registry).decode())
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
    expected = {str(g.generation): g.collections for g in monitor.gc_stats()}
    for gen, count in expected.items():
        assert sample_value(collections, "memlens_gc_collections_total", generation=gen) == count
    assert sum(expected.values()) >= 1
    pauses = families["memlens_gc_pause_seconds"]
    assert pauses.type == "histogram"  # type: ignore[attr-defined]
    gen2 = [g for g in monitor.gc_stats() if g.generation == 2][0]
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
            assert set(s.labels) <= {"generation", "le", "level", "component"}


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


def test_multiprocess_exporter_aggregates_forked_workers(tmp_path: Path) -> None:
    """gunicorn-style: parent and a forked worker each write; one scrape sees both pids."""
    script = textwrap.dedent(
        """
        import os, sys
        from memlens.core.config import Config
        from memlens.service import Monitor
        from memlens.service.prometheus import MultiprocessExporter

        mon = Monitor(Config(mode="production", persist_history=False))
        MultiprocessExporter(mon)
        mon.start(thread=False)
        pid = os.fork()
        if pid == 0:
            import gc
            gc.collect()
            mon.sample_now()  # the child's own figures, in its own per-pid file
            os._exit(0)
        os.waitpid(pid, 0)
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        sys.stdout.write(f"{os.getpid()} {pid}\\n")
        sys.stdout.write(generate_latest(registry).decode())
        """
    )
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    first, _, text = out.stdout.partition("\n")
    parent, child = first.split()
    families = parsed(text)
    rss = families["memlens_resident_memory_bytes"]
    pids = {s.labels["pid"] for s in rss.samples}  # type: ignore[attr-defined]
    assert pids == {parent, child}
    assert all(s.value > 0 for s in rss.samples)  # type: ignore[attr-defined]
    assert "memlens_gc_collections" in families
