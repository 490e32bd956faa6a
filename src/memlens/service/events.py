"""Monitor events and their delivery off the sampling thread.

The sampling thread only *publishes*: a non-blocking put into a bounded queue. A
``memlens-events`` daemon thread hands each event to the subscribers and to the
``logging`` module. A slow or failing subscriber therefore delays other
subscribers, never sampling; when the queue is full, new events are dropped and
counted (``dropped``) rather than blocking the service.
"""

from __future__ import annotations

import os
import queue
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from memlens.core.record import asdict, field, record
from memlens.core.units import format_bytes

# The logging module's level numbers (fixed by the stdlib): logging itself is imported
# at the first event, not by every process that starts a monitor (#15 footprint).
DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40


def _logger() -> Any:
    import logging

    return logging.getLogger("memlens.monitor")


@record(frozen=True)
class MonitorEvent:
    """Base of every monitor event; ``time`` is UTC epoch seconds."""

    time: float

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def log_level(self) -> int:
        return INFO

    def message(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["event"] = self.name
        return data


@record(frozen=True)
class MemoryOperationStarted(MonitorEvent):
    """A tracked operation (``Monitor.track_operation``) began."""

    operation: str
    operation_id: int
    rss: int

    @property
    def log_level(self) -> int:
        return DEBUG

    def message(self) -> str:
        return f"operation {self.operation!r} started at RSS {format_bytes(self.rss)}"


@record(frozen=True)
class MemoryOperationCompleted(MonitorEvent):
    """A tracked operation ended; ``rss_delta`` is RSS after minus before."""

    operation: str
    operation_id: int
    duration: float
    rss: int
    rss_delta: int
    traced_delta: int | None = None
    error: str | None = None

    @property
    def log_level(self) -> int:
        return DEBUG

    def message(self) -> str:
        return (
            f"operation {self.operation!r} completed in {self.duration:.3f} s, "
            f"RSS {format_bytes(self.rss_delta, signed=True)}"
        )


@record(frozen=True)
class PerformanceThresholdExceeded(MonitorEvent):
    """Memory crossed the ``level`` (warning/critical) threshold upwards."""

    level: str
    metric: str
    value: int
    threshold: int

    @property
    def log_level(self) -> int:
        return ERROR if self.level == "critical" else WARNING

    def message(self) -> str:
        return (
            f"{self.metric} {format_bytes(self.value)} exceeded the {self.level} threshold "
            f"({format_bytes(self.threshold)})"
        )


@record(frozen=True)
class PerformanceThresholdRecovered(MonitorEvent):
    """Memory fell back below a threshold by the hysteresis margin."""

    level: str
    metric: str
    value: int
    threshold: int

    def message(self) -> str:
        return (
            f"{self.metric} {format_bytes(self.value)} is back below the {self.level} "
            f"threshold ({format_bytes(self.threshold)})"
        )


@record(frozen=True)
class LeakSuspected(MonitorEvent):
    """A sustained, significant growth was found; ``leak`` is the alert as a dict."""

    leak_id: str
    component: str
    growth_rate_mb_per_min: float
    recommendation: str
    leak: dict[str, Any] = field(default_factory=dict)

    @property
    def log_level(self) -> int:
        return WARNING

    def message(self) -> str:
        return (
            f"leak suspected in {self.component}: +{self.growth_rate_mb_per_min:.2f} MB/min "
            f"(id {self.leak_id}). {self.recommendation}"
        )


@record(frozen=True)
class LeakCleared(MonitorEvent):
    """An alert ended: growth stopped (``reason='stopped'``) or it was cleared by hand."""

    leak_id: str
    component: str
    reason: str

    def message(self) -> str:
        return f"leak alert {self.leak_id} in {self.component} cleared ({self.reason})"


@record(frozen=True)
class SnapshotSkipped(MonitorEvent):
    """A heap snapshot that was due was not taken, or was cut short and not used;
    ``reason`` says why, ``cause`` is its kind and ``skipped`` the count so far.
    Component and site figures are older than usual meanwhile."""

    reason: str
    skipped: int
    #: ``fork`` (a forked child's first snapshot waits an interval, by design),
    #: ``budget`` (the last one was slow), ``tracing_off``, ``sampler`` (unavailable),
    #: ``busy`` (the previous one still being processed), ``cut_short`` (time box)
    cause: str = ""

    @property
    def log_level(self) -> int:
        # A deferral after fork happens in every worker and is by design: not a warning.
        return INFO if self.cause == "fork" else WARNING

    def message(self) -> str:
        return f"heap snapshot skipped ({self.skipped} so far): {self.reason}"


Subscriber = Callable[[MonitorEvent], None]

_STOP = object()
_live: weakref.WeakSet[EventBus] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for bus in list(_live):
        bus._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class EventBus:
    """Bounded, asynchronous delivery of events to subscribers and ``logging``."""

    def __init__(self, maxsize: int = 1000, log: bool = True, name: str = "memlens-events") -> None:
        self.maxsize = maxsize
        self.log = log
        self.name = name
        self.dropped = 0
        self.delivered = 0
        self.subscriber_errors = 0
        self._subscribers: list[tuple[Subscriber, tuple[type[MonitorEvent], ...] | None]] = []
        self._sub_lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize)
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._pending = 0

    # -- subscribing -------------------------------------------------------------
    def subscribe(
        self, callback: Subscriber, events: Iterable[type[MonitorEvent]] | None = None
    ) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (or only the given types).

        Returns a function that unsubscribes. Callbacks run on the ``memlens-events``
        thread; exceptions they raise are logged and counted, never propagated.
        """
        entry = (callback, tuple(events) if events is not None else None)
        with self._sub_lock:
            self._subscribers.append(entry)

        def unsubscribe() -> None:
            with self._sub_lock:
                if entry in self._subscribers:
                    self._subscribers.remove(entry)

        return unsubscribe

    # -- publishing --------------------------------------------------------------
    def publish(self, event: MonitorEvent) -> bool:
        """Queue ``event`` without blocking; ``False`` (and counted) if the queue is full."""
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            self._done()
            return False
        return True

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        _live.add(self)

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout``), then stop the thread."""
        thread, self._thread = self._thread, None
        _live.discard(self)
        if thread is None or not thread.is_alive():
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return
        if thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every published event has been delivered; ``False`` on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    # -- delivery ----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is _STOP:
                return
            try:
                self._deliver(event)
            finally:
                self._done()

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            if self._pending <= 0:
                self._pending = 0
                self._idle.notify_all()

    def _deliver(self, event: MonitorEvent) -> None:
        if self.log and (logger := _logger()).isEnabledFor(event.log_level):
            logger.log(event.log_level, event.message(), extra={"memlens_event": event.to_dict()})
        with self._sub_lock:
            subscribers = list(self._subscribers)
        for callback, types in subscribers:
            if types is not None and not isinstance(event, types):
                continue
            try:
                callback(event)
            except Exception:  # noqa: BLE001 - a subscriber's bug must not stop delivery
                self.subscriber_errors += 1
                _logger().exception(
                    "memlens event subscriber %r failed on %s", callback, event.name
                )
        self.delivered += 1

    def _after_fork(self) -> None:
        # The child has the queue's contents but no thread and possibly held locks.
        was_running = self._thread is not None
        self._sub_lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0
        self._queue = queue.Queue(self.maxsize)
        self._thread = None
        if was_running:
            self.start()
