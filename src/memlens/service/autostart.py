"""Start a monitor in an unmodified program: ``MEMLENS_MONITOR=1 python app.py``.

:func:`autostart` is meant to be called at interpreter start-up (from a ``.pth``
file, a ``sitecustomize`` module, or by ``memlens run --monitor``). It does nothing
unless ``MEMLENS_MONITOR`` is truthy, and never raises: a monitor that cannot start
prints one line to stderr and the program runs unmonitored. The monitor stops (and
flushes its history) at exit.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memlens.service.monitor import Monitor

ENV_VAR = "MEMLENS_MONITOR"
_TRUE = ("1", "true", "yes", "on")

_monitor: Monitor | None = None


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``MEMLENS_MONITOR`` asks for a monitor."""
    env = os.environ if env is None else env
    return env.get(ENV_VAR, "").strip().lower() in _TRUE


def autostart(env: Mapping[str, str] | None = None) -> Monitor | None:
    """Start the process-wide monitor if ``MEMLENS_MONITOR`` is set; return it."""
    global _monitor
    if _monitor is not None or not enabled(env):
        return _monitor
    try:
        from memlens.service.monitor import Monitor

        monitor = Monitor.from_config(env=env)
        monitor.start()
    except Exception as exc:  # noqa: BLE001 - never break the program we were asked to watch
        print(f"memlens: monitor not started: {exc}", file=sys.stderr)
        return None
    _monitor = monitor
    atexit.register(monitor.stop)
    if monitor.http_server is not None:
        print(f"memlens: monitor endpoints at {monitor.http_server.url}", file=sys.stderr)
    return monitor


def current() -> Monitor | None:
    """The monitor :func:`autostart` started in this process, if any."""
    return _monitor
