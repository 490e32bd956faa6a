"""Prometheus export through ``prometheus_client`` (the ``prometheus`` extra).

Single process: :func:`register` adds a custom collector that reads the monitor
*on scrape* (no background cost between scrapes)::

    from prometheus_client import REGISTRY
    memlens.service.prometheus.register(monitor, REGISTRY)

Pre-fork servers (gunicorn) with ``PROMETHEUS_MULTIPROC_DIR`` set: custom
collectors cannot see other workers, so :class:`MultiprocessExporter` writes each
worker's families (the same as the collector's) to per-pid files on every sample,
and the scrape side aggregates them with
``prometheus_client.multiprocess.MultiProcessCollector`` (gauges per live pid; call
:func:`mark_process_dead` from gunicorn's ``child_exit`` hook). See ``docs/monitor.md``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from memlens.core.errors import require
from memlens.service.metrics import Family, collect

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
    """Writes the monitor's metric families to per-pid files a ``MultiProcessCollector`` reads.

    The families are exactly those of the single-process collector
    (:func:`memlens.service.metrics.collect`): same names, same types (the GC pause
    is a histogram in both modes), and only what this process measured (a figure no
    meter read, such as USS without the ``smaps`` backend, is absent, never ``0``).
    Gauges carry a ``pid`` label (one series per live worker); counters and
    histograms are summed over workers, dead ones included, as prometheus_client does.

    memlens writes its own files in ``PROMETHEUS_MULTIPROC_DIR`` and replaces them
    whole on each write, so a series that is gone (an allocation site that left the
    top list, a cleared leak alert) disappears instead of repeating its last value,
    and the application's own prometheus_client files are never touched. Call
    :func:`mark_process_dead` (it also calls prometheus_client's) from gunicorn's
    ``child_exit`` hook. ``interval`` is the least time between writes (default 5 s;
    ``0`` writes on every sample).
    """

    #: Least seconds between writes by default: scrapes come every 15-60 s, and a
    #: write reads every family (13 ms in ``debug`` mode, which samples every 0.5 s).
    DEFAULT_INTERVAL = 5.0

    def __init__(self, monitor: Monitor, interval: float = DEFAULT_INTERVAL) -> None:
        _client()
        from memlens.core.errors import ConfigError

        self.directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
        if not self.directory:
            raise ConfigError(
                "PROMETHEUS_MULTIPROC_DIR is not set: prometheus_client multiprocess mode needs it"
            )
        if not os.path.isdir(self.directory):
            raise ConfigError(f"PROMETHEUS_MULTIPROC_DIR={self.directory!r} is not a directory")
        self.monitor = monitor
        self.interval = interval
        self.writes = 0
        self._last: float | None = None
        self._files = PidFiles(self.directory, os.getpid())
        monitor.add_sample_listener(self._on_sample)

    def _on_sample(self, t: float, values: Any) -> None:
        if os.getpid() != self._files.pid:  # forked: the child writes files of its own
            self._files = PidFiles(self.directory, os.getpid())  # the parent's stay open there
            self._last = None
        if self._last is not None and t - self._last < self.interval:
            return
        self._last = t
        self.write()

    def write(self) -> None:
        """Read the monitor now and write this process's families to its files."""
        if os.getpid() != self._files.pid:
            self._files = PidFiles(self.directory, os.getpid())
        self._files.write(collect(self.monitor))
        self.writes += 1

    def detach(self) -> None:
        """Stop writing (the files stay until :func:`mark_process_dead`)."""
        self.monitor.remove_sample_listener(self._on_sample)
        self._files.close()


# prometheus_client's collector takes a file's type from its name's first part and,
# for gauges, the aggregation mode from the second and the pid from the third. A mode
# it does not know is aggregated like ``liveall`` (one series per pid); a name of our
# own keeps our files apart from the ones prometheus_client writes for the same pid.
_GAUGE_FILE = "gauge_livememlens_{pid}.db"
_TOTAL_FILES = {"counter": "counter_memlens-{pid}.db", "histogram": "histogram_memlens-{pid}.db"}


def _files(pid: int) -> dict[str, str]:
    return {"gauge": _GAUGE_FILE.format(pid=pid)} | {
        kind: name.format(pid=pid) for kind, name in _TOTAL_FILES.items()
    }


class PidFiles:
    """One process's memlens files in a multiprocess directory.

    While the same series are written, values are updated in place (8-byte writes,
    as prometheus_client does); when the set of series changes, the file is written
    aside under a name the collector does not read and renamed over the old one, so
    a scrape reads the old or the new file, never half of one.
    """

    def __init__(self, directory: str, pid: int) -> None:
        self.directory = directory
        self.pid = pid
        self._open: dict[str, tuple[Any, list[str]]] = {}  # kind -> (MmapedDict, keys)
        self._keys: dict[tuple[str, str, tuple[tuple[str, str], ...]], str] = {}

    def write(self, families: list[Family]) -> None:
        from prometheus_client.mmap_dict import mmap_key

        by_kind: dict[str, list[tuple[str, float]]] = {}
        for fam in families:
            rows = by_kind.setdefault(fam.kind, [])
            samples = _histogram_rows(fam) if fam.kind == "histogram" else fam.samples
            for name, labels, value in samples:
                ident = (fam.name, name, tuple(labels.items()))
                key = self._keys.get(ident)
                if key is None:
                    if len(self._keys) > 10_000:  # sites come and go: keep it bounded
                        self._keys.clear()
                    key = mmap_key(fam.name, name, list(labels), list(labels.values()), fam.help)
                    self._keys[ident] = key
                rows.append((key, value))
        for kind, filename in _files(self.pid).items():
            self._write_file(kind, os.path.join(self.directory, filename), by_kind.get(kind, []))

    def _write_file(self, kind: str, path: str, rows: list[tuple[str, float]]) -> None:
        from prometheus_client.mmap_dict import MmapedDict

        keys = [key for key, _ in rows]
        current = self._open.get(kind)
        if current is not None and current[1] == keys and os.path.exists(path):
            for key, value in rows:
                current[0].write_value(key, value, 0.0)
            return
        if current is not None:
            current[0].close()
            del self._open[kind]
        if not rows:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            return
        tmp = f"{path}.{threading.get_ident()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        mm = MmapedDict(tmp)
        for key, value in rows:
            mm.write_value(key, value, 0.0)
        os.replace(tmp, path)  # the open map now belongs to the file at ``path``
        self._open[kind] = (mm, keys)

    def close(self) -> None:
        for mm, _ in self._open.values():
            mm.close()
        self._open.clear()


def write_families(directory: str, pid: int, families: list[Family]) -> None:
    """Write ``families`` as prometheus_client multiprocess files for ``pid`` (once)."""
    files = PidFiles(directory, pid)
    try:
        files.write(families)
    finally:
        files.close()


def _histogram_rows(fam: Family) -> Iterator[tuple[str, dict[str, str], float]]:
    """Per-bucket counts and the sum (prometheus_client files hold buckets uncumulated
    and derive ``_count`` from them)."""
    previous: dict[tuple[tuple[str, str], ...], float] = {}
    for name, labels, value in fam.samples:
        if name.endswith("_bucket"):
            series = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            yield name, labels, value - previous.get(series, 0.0)
            previous[series] = value
        elif name.endswith("_sum"):
            yield name, labels, value


def mark_process_dead(pid: int, path: str | None = None) -> None:
    """Drop a dead worker's gauges, memlens's and prometheus_client's (its totals stay)."""
    from prometheus_client import multiprocess

    directory = path or os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    multiprocess.mark_process_dead(pid, directory)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(directory, _GAUGE_FILE.format(pid=pid)))
