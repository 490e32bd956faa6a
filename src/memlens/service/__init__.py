"""The always-on monitor for services: leak alerts, thresholds, health and exporters.

``memlens.service.Monitor.from_config().start()`` or ``with memlens.service.monitor():``.
Exporters live in submodules so their optional dependencies load only when used:
``memlens.service.prometheus`` (extra ``prometheus``), ``memlens.service.otel``
(extra ``otel``) and ``memlens.service.http`` (stdlib only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from memlens.service.autostart import autostart
from memlens.service.events import (
    LeakCleared,
    LeakSuspected,
    MemoryOperationCompleted,
    MemoryOperationStarted,
    MonitorEvent,
    PerformanceThresholdExceeded,
    PerformanceThresholdRecovered,
    SnapshotSkipped,
)
from memlens.service.health import Health
from memlens.service.monitor import GcResult, Monitor, set_http_server_factory

if TYPE_CHECKING:
    from memlens.service.http import MonitorServer


def _serve_http(monitor: Monitor, host: str, port: int, token: str | None) -> MonitorServer:
    # Imported on first use: most monitors never serve HTTP.
    from memlens.service.http import MonitorServer

    return MonitorServer(monitor, host, port, token)


# This package is the face that joins the monitor (composition) to its HTTP endpoints
# (a face): the monitor never imports the server, it calls this.
set_http_server_factory(_serve_http)


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
    "SnapshotSkipped",
    "autostart",
    "monitor",
]
