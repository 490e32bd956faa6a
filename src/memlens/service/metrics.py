"""The monitor's metrics as plain families, and their Prometheus text exposition.

One place decides names, types and labels; the ``prometheus_client`` collector, the
multiprocess exporter and the built-in ``/metrics`` endpoint all render these
families, so they cannot disagree. Names use base units (``_bytes``, ``_seconds``,
``_total``) under a ``memlens_`` prefix (so they never clash with
``prometheus_client``'s own ``process_*``/``python_gc_*`` collectors); labels are
bounded (GC generation, threshold level, the components you registered).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from memlens.heap.gc_meter import PAUSE_BUCKETS

if TYPE_CHECKING:
    from memlens.service.monitor import Monitor

PREFIX = "memlens_"


@dataclass
class Family:
    """One metric family: ``kind`` is ``gauge``, ``counter`` or ``histogram``.

    ``name`` excludes the ``_total`` suffix of counters; ``samples`` carry full
    sample names (``..._total``, ``..._bucket``, ``..._sum``, ``..._count``).
    """

    name: str
    kind: str
    help: str
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, labels: Mapping[str, str] | None = None, suffix: str = "") -> None:
        self.samples.append((self.name + suffix, dict(labels or {}), float(value)))


def _gauge(name: str, help: str, value: float | None = None) -> Family:
    fam = Family(PREFIX + name, "gauge", help)
    if value is not None:
        fam.add(value)
    return fam


_READINGS = (
    ("rss", "resident_memory_bytes", "Resident set size of the process."),
    ("vms", "virtual_memory_bytes", "Virtual memory size of the process."),
    ("peak_rss", "resident_memory_peak_bytes", "Peak resident set size (high-water mark)."),
    ("swap", "swap_bytes", "Process memory swapped out."),
    ("uss", "unique_memory_bytes", "Unique set size: memory freed if the process exited."),
    (
        "pss",
        "proportional_memory_bytes",
        "Proportional set size: shared pages split among sharers.",
    ),
    ("traced", "python_traced_bytes", "Python heap bytes traced by tracemalloc."),
)


def allocator_families() -> list[Family]:
    """glibc malloc in use / free but held / trimmable (see ``heap/fragmentation.py``)."""
    from memlens.heap.fragmentation import ALLOCATOR_GAUGES, allocator_gauges

    values = allocator_gauges()
    return [_gauge(name, help, values[key]) for key, name, help in ALLOCATOR_GAUGES if values]


def collect(monitor: Monitor) -> list[Family]:
    """Read the monitor now and return its metric families (those with samples only)."""
    out: list[Family] = []
    readings = monitor.current()
    for key, name, help in _READINGS:
        if key in readings:
            out.append(_gauge(name, help, readings[key]))
    # Before the GC counters: reading the allocator allocates, and a collection it
    # triggered must already be in the counters exported with it.
    out.extend(allocator_families())
    if "gc" in monitor.backends:
        out.extend(gc_families(monitor))
    trends = monitor.get_memory_trends(10, max_points=1)
    out.append(
        _gauge(
            "memory_growth_rate_bytes_per_second",
            "Robust (Theil-Sen) growth rate of the RSS floor over the last 10 minutes.",
            trends["growth_rate_bytes_per_second"],
        )
    )
    leaks = monitor.leaks.active()
    out.append(_gauge("leaks_active", "Active leak alerts.", len(leaks)))
    rate = _gauge(
        "leak_growth_rate_bytes_per_second",
        "Growth rate of each active leak alert, by component.",
    )
    for leak in leaks:
        rate.add(leak.growth_rate, {"component": leak.component})
    out.append(rate)
    alerts = Family(PREFIX + "leak_alerts", "counter", "Leak alerts raised since start.")
    alerts.add(monitor.leaks.total_alerts, suffix="_total")
    out.append(alerts)
    thresholds = _gauge("memory_threshold_bytes", "Configured RSS thresholds, by level.")
    thresholds.add(monitor.config.warning_bytes, {"level": "warning"})
    thresholds.add(monitor.config.critical_bytes, {"level": "critical"})
    out.append(thresholds)
    out.append(
        _gauge(
            "memory_threshold_state",
            "Threshold state of RSS: 0 ok, 1 warning, 2 critical.",
            monitor.thresholds.rank,
        )
    )
    out.append(
        _gauge(
            "health_status", "Monitor health: 0 ok, 1 warning, 2 critical.", monitor.health().code
        )
    )
    # Component figures come from heap snapshots: with no heap source they were never
    # measured, and a 0 would read as "this component holds nothing".
    if monitor.heapwatch.component_names and monitor.heapwatch.source != "off":
        comp = _gauge("component_memory_bytes", "Python heap bytes attributed to each component.")
        comp_peak = _gauge("component_memory_peak_bytes", "Peak Python heap bytes per component.")
        for name, usage in monitor.heapwatch.usage().items():
            comp.add(usage.current, {"component": name})
            comp_peak.add(usage.peak, {"component": name})
        out.extend([comp, comp_peak])
    source = monitor.heapwatch.source
    if source != "off":
        # Bounded: the top_n largest live sites only (estimates with the sampler).
        sites = _gauge(
            "allocation_site_bytes",
            "Live Python heap bytes of the largest allocation sites (source: tracemalloc "
            "exact, or sampler estimates).",
        )
        for site in monitor.top_sites():
            sites.add(
                site.size,
                {
                    "site": f"{site.filename}:{site.lineno}",
                    "function": site.function,
                    "source": source,
                },
            )
        out.append(sites)
    stats = monitor.stats()
    for name, help, key in (
        ("monitor_samples", "Samples taken by the monitor.", "samples"),
        (
            "monitor_sample_seconds",
            "Thread CPU seconds the monitor spent sampling.",
            "sample_cpu_seconds",
        ),
        ("monitor_meter_errors", "Meter reads that failed.", "meter_errors"),
        ("monitor_events_dropped", "Events dropped because the queue was full.", "events_dropped"),
    ):
        fam = Family(PREFIX + name, "counter", help)
        fam.add(stats[key], suffix="_total")
        out.append(fam)
    skips = Family(
        PREFIX + "monitor_snapshots_skipped",
        "counter",
        "Heap snapshots due but not taken, or cut short and not used (SnapshotSkipped events).",
    )
    skips.add(stats["snapshots_skipped"] + stats["snapshots_cut_short"], suffix="_total")
    out.append(skips)
    out.append(
        _gauge(
            "monitor_history_bytes", "Memory held by the monitor's history.", stats["history_bytes"]
        )
    )
    if stats["snapshots"]:
        out.append(
            _gauge(
                "monitor_snapshot_seconds",
                "Wall time the latest heap snapshot took.",
                stats["last_snapshot_seconds"],
            )
        )
    out.extend(remedy_families())
    # A family without samples says nothing, and multiprocess files cannot carry one.
    return [fam for fam in out if fam.samples]


def remedy_name(kind: str, key: str, unit: str) -> str:
    """``memlens_<kind>_<key>`` with the unit suffix (``cache_bytes``, ``resources_hold_seconds``)."""
    name = f"{kind}_{key}"
    if unit == "bytes" and not name.endswith("_bytes"):
        name += "_bytes"
    elif unit == "seconds":
        name += "_seconds"
    return name


def remedy_families() -> list[Family]:
    """Counters of the caches, pools and recovery ladder in ``memlens.remedies``, by name.

    Nothing is imported: if no remedy was ever built, there is nothing to export.
    """
    if "memlens.remedies.registry" not in sys.modules:
        return []
    from memlens.remedies import registry

    totals: dict[tuple[str, str], dict[str, float]] = {}
    for kind, name, values in registry.snapshot():
        merged = totals.setdefault((kind, name), {})
        for key, value in values.items():
            merged[key] = merged.get(key, 0.0) + value
    out = []
    for kind, metrics in registry.METRICS.items():
        present = [(name, v) for (k, name), v in sorted(totals.items()) if k == kind]
        if not present:
            continue
        for m in metrics:
            fam = Family(PREFIX + remedy_name(kind, m.key, m.unit), m.type, m.help)
            suffix = "_total" if m.type == "counter" else ""
            for name, values in present:
                if m.key in values:
                    fam.add(values[m.key], {kind: name}, suffix)
            out.append(fam)
    return out


def _bound_label(bound: float) -> str:
    """A bucket bound as Prometheus clients write it (``1.0``, ``0.005``, ``+Inf``), so the
    ``le`` labels are the same whichever process mode wrote them."""
    return "+Inf" if bound == math.inf else repr(float(bound))


def gc_families(monitor: Monitor) -> list[Family]:
    """GC collections, collected/uncollectable objects and the pause histogram."""
    stats = monitor.gc_stats()
    collections = Family(PREFIX + "gc_collections", "counter", "GC collections, by generation.")
    collected = Family(
        PREFIX + "gc_collected_objects", "counter", "Objects collected by the GC, by generation."
    )
    uncollectable = Family(
        PREFIX + "gc_uncollectable_objects",
        "counter",
        "Uncollectable objects found, by generation.",
    )
    pauses = Family(PREFIX + "gc_pause_seconds", "histogram", "GC pause durations, by generation.")
    for g in stats:
        labels = {"generation": str(g.generation)}
        collections.add(g.collections, labels, "_total")
        collected.add(g.collected, labels, "_total")
        uncollectable.add(g.uncollectable, labels, "_total")
        cumulative = 0
        for bound in (*PAUSE_BUCKETS, math.inf):
            key = "+Inf" if bound == math.inf else f"{bound:g}"
            cumulative += g.pause_histogram.get(key, 0)
            pauses.add(cumulative, {**labels, "le": _bound_label(bound)}, "_bucket")
        pauses.add(g.collections, labels, "_count")
        pauses.add(g.pause_total, labels, "_sum")
    return [collections, collected, uncollectable, pauses]


# -- text exposition (format 0.0.4) ------------------------------------------------------
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def render(families: Iterable[Family]) -> str:
    """The Prometheus text exposition of ``families``."""
    lines: list[str] = []
    for fam in families:
        # Format 0.0.4 names a counter's family by its sample name, ``_total`` included.
        head = fam.name + "_total" if fam.kind == "counter" else fam.name
        lines.append(f"# HELP {head} {_escape_help(fam.help)}")
        lines.append(f"# TYPE {head} {fam.kind}")
        for name, labels, value in fam.samples:
            if labels:
                body = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
                lines.append(f"{name}{{{body}}} {_format_value(value)}")
            else:
                lines.append(f"{name} {_format_value(value)}")
    return "\n".join(lines) + "\n"


def by_name(families: Sequence[Family]) -> dict[str, Family]:
    return {f.name: f for f in families}
