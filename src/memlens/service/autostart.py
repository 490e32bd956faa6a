"""Start a monitor in an unmodified program: ``MEMLENS_MONITOR=1 python app.py``.

:func:`autostart` is meant to be called at interpreter start-up (from a ``.pth``
file, a ``sitecustomize`` module, or by ``memlens run --monitor``). It does nothing
unless ``MEMLENS_MONITOR`` is truthy, and never raises: a monitor that cannot start
prints one line to stderr and the program runs unmonitored. The monitor stops (and
flushes its history) at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memlens.service.monitor import Monitor

ENV_VAR = "MEMLENS_MONITOR"
#: Set by a process whose monitor started: ``<name>:<pid>``. A child that inherits it
#: (multiprocessing spawn/forkserver, subprocess) is a child of that service.
PARENT_VAR = "MEMLENS_MONITOR_PARENT"
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
    source = os.environ if env is None else env
    overrides = _child_overrides(source.get(PARENT_VAR, ""))
    monitor = None
    try:
        from memlens.service.monitor import Monitor

        monitor = Monitor.from_config(env=env, **overrides)
        monitor.start()
    except Exception as exc:  # noqa: BLE001 - never break the program we were asked to watch
        if monitor is not None:
            # half started (sampling, but no endpoints): stop it rather than leave a
            # monitor running that nobody flushes
            with contextlib.suppress(Exception):
                monitor.stop()
        print(f"memlens: monitor not started: {exc}", file=sys.stderr)
        return None
    _monitor = monitor
    os.environ[PARENT_VAR] = f"{monitor.name}:{os.getpid()}"
    atexit.register(monitor.stop)
    if monitor.http_server is not None:
        print(f"memlens: monitor endpoints at {monitor.http_server.url}", file=sys.stderr)
    return monitor


def _child_overrides(parent: str) -> dict[str, Any]:
    """Config for a child of a monitored process: its own session, no endpoints.

    Children started by spawn or forkserver all run ``python -c …``: named after
    their command line they would share one session ("-c") and all try the parent's
    HTTP port. Each is named ``<parent>-child-<pid>`` and leaves the endpoints to the
    parent.
    """
    name, _, pid = parent.rpartition(":")
    if not name or not pid.isdigit() or int(pid) == os.getpid():
        return {}
    return {"service_name": f"{name}-child-{os.getpid()}", "http_enabled": False}


def current() -> Monitor | None:
    """The monitor :func:`autostart` started in this process, if any."""
    return _monitor
