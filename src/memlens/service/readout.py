"""What a monitor reports now: current figures, its own costs, the ``/debug/memory`` data."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from memlens.core.clock import utc_iso
from memlens.core.record import asdict

if TYPE_CHECKING:
    from memlens.service.monitor import Monitor

# Values read as bytes (ints for people and exporters).
BYTE_FIELDS = ("rss", "vms", "peak_rss", "swap", "uss", "pss", "traced", "traced_peak")


def current(mon: Monitor) -> dict[str, int]:
    """Memory figures now, in bytes: a fresh cheap read plus the latest detailed ones."""
    latest = dict(mon.latest)  # a C-level copy: the sampling thread may add keys meanwhile
    out = {k: int(v) for k, v in latest.items() if k in BYTE_FIELDS and v == v}
    if mon._custom_readers is None and "system" in mon.backends:
        with contextlib.suppress(OSError):
            out.update(mon.process.read())
    if mon.heapwatch.tracing:
        out.update(mon.heapwatch.heap.read())
    return out


def debug_snapshot(mon: Monitor) -> dict[str, Any]:
    """Everything ``/debug/memory`` serves, as plain JSON-ready data."""
    usage = mon.heapwatch.usage()
    return {
        "service": mon.name,
        "pid": os.getpid(),
        "mode": mon.config.mode,
        "time": utc_iso(mon.clock.wall()),
        "uptime_seconds": mon.now() - mon.run_start_t,
        "interval": mon.interval,
        "backends": list(mon.backends),
        "readings": mon.current(),
        "thresholds": {
            "state": mon.thresholds.state,
            "warning_bytes": mon.config.warning_bytes,
            "critical_bytes": mon.config.critical_bytes,
        },
        "trends": mon.get_memory_trends(10, max_points=120),
        "leaks": mon.get_active_leaks(),
        "top_sites": [
            {
                "location": s.location,
                "function": s.function,
                "size": s.size,
                "count": s.count,
                "size_diff": s.size_diff,
                "component": s.component,
            }
            for s in mon.top_sites()
        ],
        "components": [asdict(u) for u in usage.values()],
        "components_tracked": mon.heapwatch.tracing or mon.heapwatch.sampling,
        "sites_source": mon.heapwatch.source,
        # Snapshots run off the sampling thread, time-boxed: say which were not used.
        "snapshots": {
            "taken": mon.heapwatch.snapshots,
            "skipped": mon.heapwatch.skipped,
            "cut_short": mon.heapwatch.cut_short,
            "last_skip": mon.heapwatch.last_skip,
        },
        "gc": [asdict(g) for g in mon.gc_stats()],
        "health": mon.health().to_dict(),
        "monitor": mon.stats(),
        "recovery": mon.recovery_history()[-5:],
        "memory_breakdown": _breakdown(),
    }


def _breakdown() -> dict[str, Any] | None:
    """Where the RSS is and the verdict (``heap/fragmentation.py``), or ``None``."""
    from memlens.heap.fragmentation import measure

    try:
        return measure(smaps=False).to_dict()
    except Exception:  # noqa: BLE001 - one missing section must not fail the endpoint
        return None


def stats(mon: Monitor) -> dict[str, Any]:
    """The monitor's own costs and counters."""
    with mon._series_lock():
        nbytes = mon.series.nbytes()
    return {
        "samples": mon.samples,
        "sample_cpu_seconds": mon.sample_cpu,
        "meter_errors": mon.recorder.errors,
        "events_dropped": mon.events.dropped,
        "events_delivered": mon.events.delivered,
        "leak_alerts_total": mon.leaks.total_alerts,
        "history_bytes": nbytes,
        "snapshots": mon.heapwatch.snapshots,
        "snapshots_skipped": mon.heapwatch.skipped,
        "snapshots_cut_short": mon.heapwatch.cut_short,
        "last_snapshot_skip": mon.heapwatch.last_skip,
        "last_snapshot_seconds": mon.heapwatch.last_duration,
        "flush_errors": mon.flush_errors,
        "last_flush": utc_iso(mon.last_flush) if mon.last_flush else None,
        "last_flush_error": mon.last_flush_error,
    }
