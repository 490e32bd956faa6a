"""The always-on monitor for services: leak alerts, thresholds, health and exporters.

``memlens.service.Monitor.from_config().start()`` or ``with memlens.service.monitor():``.
Exporters live in submodules so their optional dependencies load only when used:
``memlens.service.prometheus`` (extra ``prometheus``), ``memlens.service.otel``
(extra ``otel``) and ``memlens.service.http`` (stdlib only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from memlens.service.autostart import autostart
from memlens.service.events import (
    LeakCleared,
    LeakSuspected,
    MemoryOperationCompleted,
    MemoryOperationStarted,
    MonitorEvent,
    PerformanceThresholdExceeded,
    PerformanceThresholdRecovered,
)
from memlens.service.health import Health
from memlens.service.monitor import GcResult, Monitor


@contextlib.contextmanager
def monitor(directory: str | None = None, **overrides: Any) -> Iterator[Monitor]:
    """Run a :class:`Monitor` for the duration of a block (config as ``from_config``)."""
    mon = Monitor.from_config(directory, **overrides).start()
    try:
        yield mon
    finally:
        mon.stop()


__all__ = [
    "GcResult",
    "Health",
    "LeakCleared",
    "LeakSuspected",
    "MemoryOperationCompleted",
    "MemoryOperationStarted",
    "Monitor",
    "MonitorEvent",
    "PerformanceThresholdExceeded",
    "PerformanceThresholdRecovered",
    "autostart",
    "monitor",
]
