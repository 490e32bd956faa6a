"""Prometheus export through ``prometheus_client`` (the ``prometheus`` extra).

Single process: :func:`register` adds a custom collector that reads the monitor
*on scrape* (no background cost between scrapes)::

    from prometheus_client import REGISTRY
    memlens.service.prometheus.register(monitor, REGISTRY)

Pre-fork servers (gunicorn) with ``PROMETHEUS_MULTIPROC_DIR`` set: custom
collectors cannot see other workers, so :class:`MultiprocessExporter` writes each
worker's values to prometheus_client's per-pid files on every sample, and the
scrape side aggregates them with ``prometheus_client.multiprocess.MultiProcessCollector``
(gauges are exported per live pid, ``multiprocess_mode="liveall"``; call
``prometheus_client.multiprocess.mark_process_dead(pid)`` from gunicorn's
``child_exit`` hook). See ``docs/monitor.md``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from memlens.core.errors import require
from memlens.service.metrics import PREFIX, Family, collect

if TYPE_CHECKING:
    from memlens.service.monitor import Monitor


def _client() -> Any:
    return require("prometheus_client", "prometheus")


def to_prometheus(families: list[Family]) -> list[Any]:
    """Convert memlens families to ``prometheus_client`` metric families."""
    core = require("prometheus_client.core", "prometheus")
    out = []
    for fam in families:
        metric = core.Metric(fam.name, fam.help, fam.kind)
        for name, labels, value in fam.samples:
            metric.add_sample(name, labels, value)
        out.append(metric)
    return out


class MemlensCollector:
    """A ``prometheus_client`` custom collector reading ``monitor`` on each scrape."""

    def __init__(self, monitor: Monitor) -> None:
        _client()
        self.monitor = monitor

    def collect(self) -> Iterator[Any]:
        yield from to_prometheus(collect(self.monitor))

    def describe(self) -> list[Any]:
        # Declaring no names up front keeps registration from sampling at import
        # time; names are prefixed, so they cannot clash with other collectors.
        return []


def register(monitor: Monitor, registry: Any = None) -> MemlensCollector:
    """Register a :class:`MemlensCollector` in ``registry`` (default: the global one)."""
    client = _client()
    collector = MemlensCollector(monitor)
    (registry if registry is not None else client.REGISTRY).register(collector)
    return collector


class MultiprocessExporter:
    """Writes the monitor's figures to prometheus_client multiprocess files per sample.

    Needs ``PROMETHEUS_MULTIPROC_DIR`` set before ``prometheus_client`` is imported
    (as prometheus_client itself requires). Cost per sample: a few mmap writes.
    """

    GAUGES = (
        ("rss", "resident_memory_bytes", "Resident set size of the process."),
        ("vms", "virtual_memory_bytes", "Virtual memory size of the process."),
        ("swap", "swap_bytes", "Process memory swapped out."),
        ("uss", "unique_memory_bytes", "Unique set size of the process."),
        ("pss", "proportional_memory_bytes", "Proportional set size of the process."),
        ("traced", "python_traced_bytes", "Python heap bytes traced by tracemalloc."),
    )

    def __init__(self, monitor: Monitor) -> None:
        client = _client()
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from memlens.core.errors import ConfigError

            raise ConfigError(
                "PROMETHEUS_MULTIPROC_DIR is not set: prometheus_client multiprocess mode needs it"
            )
        self.monitor = monitor
        self._gauges = {
            key: client.Gauge(PREFIX + name, help, registry=None, multiprocess_mode="liveall")
            for key, name, help in self.GAUGES
        }
        self._leaks = client.Gauge(
            PREFIX + "leaks_active",
            "Active leak alerts.",
            registry=None,
            multiprocess_mode="liveall",
        )
        self._collections = client.Counter(
            PREFIX + "gc_collections",
            "GC collections, by generation.",
            ["generation"],
            registry=None,
        )
        self._pause = client.Counter(
            PREFIX + "gc_pause_seconds",
            "Total GC pause time, by generation.",
            ["generation"],
            registry=None,
        )
        self._sent: dict[tuple[str, int], float] = {}
        self._pid = os.getpid()
        monitor.add_sample_listener(self._on_sample)

    def _on_sample(self, t: float, values: Any) -> None:
        if os.getpid() != self._pid:  # forked: the child's GC counters start at zero
            self._pid = os.getpid()
            self._sent.clear()
        for key, gauge in self._gauges.items():
            value = values.get(key)
            if value is not None and value == value:
                gauge.set(value)
        self._leaks.set(len(self.monitor.leaks.alerts))
        if "gc" in self.monitor.backends:
            # Counters only go up: add what happened since the last sample.
            for g in self.monitor.gc_stats():
                for kind, counter, total in (
                    ("c", self._collections, float(g.collections)),
                    ("p", self._pause, g.pause_total),
                ):
                    slot = (kind, g.generation)
                    delta = total - self._sent.get(slot, 0.0)
                    if delta > 0:
                        counter.labels(str(g.generation)).inc(delta)
                        self._sent[slot] = total

    def detach(self) -> None:
        """Stop writing (the files stay until ``mark_process_dead``)."""
        self.monitor.remove_sample_listener(self._on_sample)
