"""The always-on monitor: cheap sampling, bounded history, leak alerts, events, health.

``Monitor.from_config().start()`` starts a ``memlens-monitor`` daemon thread (a
:class:`~memlens.core.recorder.Recorder`) that reads the meters the mode enables
into a bounded tiered :class:`~memlens.core.series.Series`. On the sampling thread
it only does cheap work per sample (threshold check, a few dict writes); leak
statistics run every ``leak_check_interval``, tracemalloc snapshots (opt-in modes
only) every ``snapshot_interval`` and the history flush every
``history_flush_interval``. Events go through a bounded queue to the
``memlens-events`` thread, so subscribers never stall sampling.

After ``os.fork()`` the child keeps monitoring with a fresh history of its own
(gunicorn/uwsgi preload); it does not persist history or serve HTTP, since those
belong to the parent.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from memlens.core.clock import SYSTEM_CLOCK, Clock
from memlens.core.config import Config, load_config
from memlens.core.errors import NotFoundError
from memlens.core.recorder import Recorder
from memlens.core.series import Series
from memlens.core.session import (
    COMPLETED,
    RUNNING,
    AllocationSite,
    ComponentUsage,
    GcGenerationStats,
    Metadata,
    Session,
)
from memlens.heap.gc_meter import GcMeter
from memlens.heap.process_meter import ProcessMeter
from memlens.service import actions, growth, history, readout, recovery, shutdown
from memlens.service import health as health_mod
from memlens.service.actions import GcResult
from memlens.service.components import HeapWatch
from memlens.service.events import (
    EventBus,
    LeakCleared,
    MonitorEvent,
    PerformanceThresholdExceeded,
    PerformanceThresholdRecovered,
    SnapshotSkipped,
    Subscriber,
)
from memlens.service.leaks import (
    MB,
    LeakAlert,
    LeakTracker,
)
from memlens.service.thresholds import ThresholdTracker

if TYPE_CHECKING:
    from memlens.core.findings import Diagnosis
    from memlens.remedies.ladder import RecoveryLadder
    from memlens.service.http import MonitorServer

Reader = Callable[[], Mapping[str, float]]

_live: weakref.WeakSet[Monitor] = weakref.WeakSet()


def running_monitors() -> list[Monitor]:
    """The monitors started in this process and not yet stopped."""
    return [m for m in list(_live) if m._started]


def _after_fork_in_child() -> None:
    for monitor in list(_live):
        monitor._after_fork()


# Registered after memlens.core.recorder's and memlens.service.events' hooks (they
# are imported above), and fork hooks run in registration order in the child: the
# recorder has already dropped its dead thread when ours restarts it.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


#: Builds the HTTP endpoints of a monitor: ``(monitor, host, port, token)``. The server
#: is a face above the monitor, so the monitor holds only this callback; the
#: ``memlens.service`` package, which Python loads before this module, sets it.
HttpServerFactory = Callable[["Monitor", str, int, "str | None"], "MonitorServer"]
_http_server_factory: HttpServerFactory | None = None


def set_http_server_factory(factory: HttpServerFactory) -> None:
    """Set what :meth:`Monitor.serve_http` starts (``memlens.service`` does)."""
    global _http_server_factory
    _http_server_factory = factory


def _default_name() -> str:
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    name = os.path.splitext(argv0)[0] or "python"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


class Monitor:
    """An always-on memory monitor for one process (see the module docstring).

    ``clock`` is injectable (tests drive a :class:`~memlens.core.clock.ManualClock`
    and call :meth:`sample_now`); ``readers`` replaces the meters that feed the
    series (synthetic data in tests); ``store`` replaces the session store.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        readers: Sequence[Reader] | None = None,
        store: Any = None,
    ) -> None:
        self.config = config if config is not None else Config()
        cfg = self.config
        self.clock = clock
        self.name = cfg.service_name or _default_name()
        self.session_id = f"monitor-{self.name}"
        self.enabled = cfg.mode != "off"
        self.interval = cfg.effective_interval
        self.backends = cfg.effective_backends
        self._custom_readers = list(readers) if readers is not None else None
        self._explicit = threading.local()  # .on: inside sample_now()
        self._store = store
        self._history_path: str | None = None  # "" once known to go through a store
        self._lock = threading.RLock()
        self.events = EventBus(cfg.event_queue_size)
        components = dict(cfg.components) if cfg.enable_component_tracking else {}
        self.heapwatch = HeapWatch(
            cfg.effective_trace_depth,
            components,
            tracing="tracemalloc" in self.backends,
            sampling="sampler" in self.backends,
            sampler_budget=cfg.sampler_budget,
        )
        self.heapwatch.on_skip = self._snapshot_skipped
        self._server: MonitorServer | None = None
        self._op_ids = itertools.count(1)
        self._started = False
        self._threaded = False
        self._sample_listeners: list[Callable[[float, Mapping[str, float]], None]] = []
        self.recovery: RecoveryLadder | None = None  # see enable_recovery()
        self._recovery_detach: Callable[[], None] | None = None
        self._reset_state()

    # -- construction --------------------------------------------------------------
    @classmethod
    def from_config(
        cls,
        directory: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        readers: Sequence[Reader] | None = None,
        store: Any = None,
        **overrides: Any,
    ) -> Monitor:
        """Build from pyproject/memlens.toml/``MEMLENS_*``/``overrides`` (that order)."""
        return cls(
            load_config(directory, env, **overrides), clock=clock, readers=readers, store=store
        )

    def _reset_state(self) -> None:
        """Fresh meters, history and detectors (at construction and in a forked child)."""
        cfg = self.config
        self.pid = os.getpid()
        self.process = ProcessMeter(
            smaps_interval=cfg.smaps_interval,
            smaps_max_rss=int(cfg.smaps_max_rss_mb * MB),
            monotonic=self.clock.monotonic,
        )
        self.gc_meter = GcMeter()
        raw = max(16, int(math.ceil(cfg.raw_history_seconds / self.interval)))
        self.series = Series(raw_capacity=raw)
        self.origin = self.clock.monotonic()
        self.wall_origin = self.clock.wall()
        self.run_start_t = 0.0
        self.thresholds = ThresholdTracker(
            cfg.warning_bytes, cfg.critical_bytes, cfg.threshold_hysteresis
        )
        self.leaks = LeakTracker()
        self.heapwatch.reset()
        self.latest: dict[str, float] = {}
        self.samples = 0
        self.sample_cpu = 0.0  # thread CPU seconds spent sampling (readers + checks)
        self._sample_began = 0.0
        self._last_leak_check: float | None = None
        self._last_flush_t = 0.0
        self._rebaselined = False
        self.flush_errors = 0
        self.last_flush_error: str | None = None
        self.last_flush: float | None = None
        self._metadata = Metadata()
        readers: list[Reader] = [self._begin_sample]
        if self._custom_readers is not None:
            readers += self._custom_readers
        else:
            if "system" in self.backends:
                readers.append(self._read_process)
            if "smaps" in self.backends:
                readers.append(self._read_detailed)
            if "gc" in self.backends:
                readers.append(self._read_gc)
            if "tracemalloc" in self.backends:
                readers.append(self._read_heap)
        readers.append(self._read_snapshot)
        self.recorder = Recorder(
            self.series,
            readers,
            self.interval,
            clock=self.clock,
            origin=self.origin,
            listeners=[self._on_sample],
            restart_after_fork=False,  # our fork hook restarts it with a fresh history
            name="memlens-monitor",
        )

    # -- lifecycle -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.recorder.running

    def start(self, thread: bool = True) -> Monitor:
        """Start sampling (and events delivery); a no-op in mode ``off``.

        ``thread=False`` starts everything except the sampling thread, for callers
        (tests, simulations) that drive :meth:`sample_now` themselves.
        """
        if not self.enabled or self._started:
            return self
        if self.pid != os.getpid():
            self._reset_state()  # built before a fork, started in the child
        self._started = True
        self._threaded = thread
        if self.config.persist_history:
            self._restore()
        self.events.start()
        if "gc" in self.backends:
            self.gc_meter.start()
        self.heapwatch.start()
        _live.add(self)
        if self.config.enable_recovery and self.recovery is None:
            self.enable_recovery()
        shutdown.watch(self)  # `kill PID` still gets the final flush
        if thread:
            self.recorder.start()
        else:
            self.recorder.sample()
        if self.config.http_enabled and self._server is None:
            self.serve_http()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sampling, flush history, deliver queued events and stop the threads."""
        if not self._started:
            return
        self._started = False
        self.recorder.stop(timeout)
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self.config.persist_history and self.pid == self._owner_pid():
            self.flush(status=COMPLETED)
        self.gc_meter.stop()
        self.heapwatch.wait_background(timeout)  # a snapshot still being processed
        self.heapwatch.stop()
        self.events.stop(timeout)
        _live.discard(self)
        shutdown.unwatch(self)

    def _owner_pid(self) -> int:
        return getattr(self, "_original_pid", self.pid)

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- sampling (runs on the memlens-monitor thread) ------------------------------------
    def _begin_sample(self) -> Mapping[str, float]:
        self._sample_began = time.thread_time()
        return {}

    def _read_process(self) -> Mapping[str, float]:
        return self.process.read()

    def _read_detailed(self) -> Mapping[str, float]:
        return self.process.read_detailed()

    def _read_gc(self) -> Mapping[str, float]:
        return self.gc_meter.read()

    def _read_heap(self) -> Mapping[str, float]:
        return self.heapwatch.heap.read()

    def _read_snapshot(self) -> Mapping[str, float]:
        t = self.clock.monotonic() - self.origin
        interval = self.config.effective_snapshot_interval
        if not self.heapwatch.due(t, interval):
            return {}
        # Re-baseline once the warm-up is over, so start-up allocations are not "growth".
        rebaseline = not self._rebaselined and t >= self._warmup_end
        if rebaseline:
            self._rebaselined = True
        if not getattr(self._explicit, "on", False):
            # The sampling thread (or start()): process the snapshot on a worker,
            # time-boxed to one snapshot interval, so RSS/GC samples and thresholds
            # never wait for it. sample_now() asked for the values now: it waits.
            return self.heapwatch.take_in_background(t, interval, rebaseline=rebaseline)
        return self.heapwatch.take(t, rebaseline=rebaseline) or {}

    def _snapshot_skipped(self, cause: str, reason: str) -> None:
        # On the sampling thread, or the snapshot worker for one cut short.
        count = self.heapwatch.skipped + self.heapwatch.cut_short
        self.events.publish(SnapshotSkipped(self._wall(self.now()), reason, count, cause))

    @property
    def _warmup_end(self) -> float:
        return self.run_start_t + self.config.leak_warmup_seconds

    def sample_now(self) -> dict[str, float]:
        """Take one sample now (as the thread does), run due checks; returns the values.

        A snapshot due now is taken on this thread, so its values are in the result.
        """
        self._explicit.on = True
        try:
            return self.recorder.sample()
        finally:
            self._explicit.on = False

    def _on_sample(self, t: float, values: Mapping[str, float]) -> None:
        self.samples += 1
        latest = self.latest
        latest.update(values)
        latest["t"] = t
        rss = values.get("rss")
        if rss is not None:
            for tr in self.thresholds.update(int(rss)):
                cls = PerformanceThresholdExceeded if tr.upward else PerformanceThresholdRecovered
                self.events.publish(cls(self._wall(t), tr.level, "rss", tr.value, tr.threshold))
        cfg = self.config
        if cfg.enable_leak_detection and (
            self._last_leak_check is None or t - self._last_leak_check >= cfg.leak_check_interval
        ):
            self._last_leak_check = t
            self.check_leaks(t)
        if (
            cfg.persist_history
            and self.pid == self._owner_pid()
            and t - self._last_flush_t >= cfg.history_flush_interval
        ):
            self._last_flush_t = t
            self.flush()
        for listener in self._sample_listeners:
            try:
                listener(t, values)
            except Exception as exc:  # noqa: BLE001 - an exporter must not stop sampling
                self.recorder.errors += 1
                self.recorder.last_error = f"listener {type(exc).__name__}: {exc}"
        self.sample_cpu += max(0.0, time.thread_time() - self._sample_began)

    def add_sample_listener(self, listener: Callable[[float, Mapping[str, float]], None]) -> None:
        """Call ``listener(t, values)`` on the sampling thread after each sample.

        For cheap exporters only (it runs on the sampling thread); it survives fork.
        """
        self._sample_listeners.append(listener)

    def remove_sample_listener(
        self, listener: Callable[[float, Mapping[str, float]], None]
    ) -> None:
        if listener in self._sample_listeners:
            self._sample_listeners.remove(listener)

    def _wall(self, t: float) -> float:
        return self.wall_origin + t

    def now(self) -> float:
        """The current time on the series' axis (seconds)."""
        return self.clock.monotonic() - self.origin

    # -- leaks ---------------------------------------------------------------------------
    def check_leaks(self, t: float | None = None) -> list[LeakAlert]:
        """Evaluate every tracked series now; publishes events; returns new alerts."""
        return growth.check_leaks(self, t)

    def diagnosis(self) -> Diagnosis[Any]:
        """The active leak alerts as findings (``memlens.core.findings``)."""
        return growth.diagnosis(self)

    def get_active_leaks(self) -> list[dict[str, Any]]:
        """Active leak alerts, fastest first (see ``LeakAlert.to_dict`` for the keys)."""
        return [a.to_dict() for a in self.leaks.active()]

    def clear_leak_alerts(self, leak_id: str | None = None) -> int:
        """Acknowledge one alert (or all); only new growth can raise them again.

        Returns the number cleared; an unknown ``leak_id`` raises ``NotFoundError``.
        """
        t = self.now()
        removed = self.leaks.clear(leak_id, t)
        if leak_id is not None and not removed:
            raise NotFoundError(f"no active leak alert {leak_id!r}")
        for alert in removed:
            self.events.publish(LeakCleared(self._wall(t), alert.id, alert.component, "cleared"))
        return len(removed)

    # -- recovery ------------------------------------------------------------------------
    def enable_recovery(
        self,
        ladder: RecoveryLadder | None = None,
        *,
        on_leak: bool = True,
        on_critical: bool = True,
    ) -> RecoveryLadder:
        """Run the recovery ladder (``memlens.remedies``) when a leak alert or the critical
        threshold fires, until RSS is under the warning threshold; returns the ladder.

        Opt-in (also ``enable_recovery = true`` in the config). The ladder runs on its own
        ``memlens-recovery`` thread; :meth:`recovery_history` lists its runs.
        """
        return recovery.enable(self, ladder, on_leak=on_leak, on_critical=on_critical)

    def disable_recovery(self) -> None:
        """Stop triggering the ladder (its history stays readable)."""
        recovery.disable(self)

    def recovery_history(self) -> list[dict[str, Any]]:
        """The recovery ladder's last runs, oldest first (each step's bytes and time)."""
        return recovery.history(self)

    # -- trends --------------------------------------------------------------------------
    def get_memory_trends(
        self, window_minutes: float = 10, max_points: int = 600
    ) -> dict[str, Any]:
        """RSS over the last ``window_minutes``: points, summary and growth verdict."""
        return growth.memory_trends(self, window_minutes, max_points)

    # -- events and operations ---------------------------------------------------------
    def subscribe(
        self, callback: Subscriber, events: Iterable[type[MonitorEvent]] | None = None
    ) -> Callable[[], None]:
        """Receive events on the ``memlens-events`` thread; returns an unsubscribe function."""
        return self.events.subscribe(callback, events)

    def track_operation(self, name: str) -> contextlib.AbstractContextManager[int]:
        """Emit ``MemoryOperationStarted``/``Completed`` around a block (RSS delta, time)."""
        return actions.track_operation(self, name)

    # -- components ------------------------------------------------------------------------
    def register_component(self, name: str, prefix: str) -> None:
        """Attribute memory allocated by module/package ``prefix`` (or a path) to ``name``."""
        self.heapwatch.register(name, prefix)

    def get_component_memory_usage(
        self, name: str | None = None
    ) -> ComponentUsage | dict[str, ComponentUsage]:
        """Current/peak/growth bytes of one component, or all of them by name.

        Figures come from tracemalloc snapshots, so they stay 0 unless ``tracemalloc``
        is an enabled backend (modes ``advanced``/``debug``).
        """
        usage = self.heapwatch.usage(name)
        return usage[name] if name is not None else usage

    # -- GC --------------------------------------------------------------------------------
    def gc_stats(self) -> list[GcGenerationStats]:
        """Per-generation collections, collected/uncollectable and pause histogram."""
        return self.gc_meter.stats()

    def force_garbage_collection(self, generation: int = 2) -> GcResult:
        """Run ``gc.collect(generation)`` and report what it freed and how long it paused."""
        return actions.force_garbage_collection(self, generation)

    # -- reading ---------------------------------------------------------------------------
    def current(self) -> dict[str, int]:
        """Memory figures now, in bytes: a fresh cheap read plus the latest detailed ones."""
        return readout.current(self)

    def health(self) -> health_mod.Health:
        """ok / warning / critical with reasons (thresholds, leaks, monitor thread)."""
        return health_mod.evaluate(
            enabled=self.enabled,
            running=self.running,
            threshold_state=self.thresholds.state,
            rss=self.thresholds.last_value,
            warning_bytes=self.config.warning_bytes,
            critical_bytes=self.config.critical_bytes,
            leaks=self.leaks.active(),
            meter_errors=self.recorder.errors,
            last_error=self.recorder.last_error,
            events_dropped=self.events.dropped,
            failing=self.recorder.failing,
        )

    def top_sites(self, limit: int | None = None) -> list[AllocationSite]:
        """Largest live allocation sites at the latest snapshot (tracemalloc on)."""
        return self.heapwatch.top_sites(limit or self.config.top_n)

    def debug_snapshot(self) -> dict[str, Any]:
        """Everything ``/debug/memory`` serves, as plain JSON-ready data."""
        return readout.debug_snapshot(self)

    def stats(self) -> dict[str, Any]:
        """The monitor's own costs and counters."""
        return readout.stats(self)

    # -- history -----------------------------------------------------------------------------
    def _series_lock(self) -> Any:
        # The recorder appends under its lock; readers in other threads take the same one.
        return self.recorder.lock

    def to_session(self, status: str = RUNNING) -> Session:
        """The monitor's state as a ``Session(kind="monitor")`` (shares the live series)."""
        return history.to_session(self, status)

    def flush(self, status: str = RUNNING) -> bool:
        """Save the history to the session store now; ``False`` (counted) on failure."""
        return history.flush(self, status)

    def _restore(self) -> None:
        """Continue the stored history of this service, if any."""
        return history.restore(self)

    # -- HTTP --------------------------------------------------------------------------------
    def serve_http(
        self, host: str | None = None, port: int | None = None, token: str | None = None
    ) -> MonitorServer:
        """Serve ``/metrics``, ``/healthz`` and ``/debug/memory`` (see ``memlens.service.http``)."""
        if self._server is not None:
            return self._server
        if _http_server_factory is None:  # pragma: no cover - memlens.service sets it
            raise RuntimeError("no HTTP server: memlens.service is not loaded")
        cfg = self.config
        server = _http_server_factory(
            self,
            host if host is not None else cfg.http_host,
            port if port is not None else cfg.http_port,
            token if token is not None else cfg.http_token,
        )
        server.start()
        self._server = server
        return server

    @property
    def http_server(self) -> MonitorServer | None:
        return self._server

    # -- fork ----------------------------------------------------------------------------------
    def _after_fork(self) -> None:
        if not hasattr(self, "_original_pid"):
            self._original_pid = self.pid
        if self._server is not None:
            self._server.close_inherited()
            self._server = None
        self.gc_meter.stop()
        self._lock = threading.RLock()
        self._store = None
        self._reset_state()
        self.heapwatch.defer_first_snapshot()  # keep the child's first seconds cheap
        if not self._started:
            return
        if "gc" in self.backends:
            self.gc_meter.start()
        if self._threaded:
            # The first sample (an smaps read in some modes) runs on the new thread, so
            # os.fork() returns in the child without reading any meter.
            self.recorder.start(sample_now=False)
