"""Flush running monitors when the process is told to stop with SIGTERM.

``kill PID`` (and every process manager's stop: systemd, Docker, Kubernetes) sends
SIGTERM, whose default action ends the process at once: no ``atexit``, no final
flush, and the stored session says "running" forever. While a monitor runs, memlens
handles SIGTERM *only if nobody else does* (the handler is still the default): it
stops every running monitor (a final flush with status ``completed``), puts the
default action back and sends the signal again, so the process still ends by SIGTERM
with the same exit status. A program with its own handler keeps it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memlens.service.monitor import Monitor

_running: weakref.WeakSet[Monitor] = weakref.WeakSet()
_installed = False


def _on_sigterm(signum: int, frame: Any) -> None:
    for monitor in list(_running):
        # the process is ending: flush what can be flushed
        with contextlib.suppress(Exception):
            monitor.stop(timeout=2.0)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def watch(monitor: Monitor) -> None:
    """Flush ``monitor`` on SIGTERM (installs the handler if SIGTERM is unhandled)."""
    global _installed
    _running.add(monitor)
    if _installed or threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
            _installed = True
    except (ValueError, OSError):  # not the main interpreter, or no SIGTERM here
        pass


def unwatch(monitor: Monitor) -> None:
    """Forget ``monitor``; the last one gone puts the default action back."""
    global _installed
    _running.discard(monitor)
    if _running or not _installed:
        return
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) is _on_sigterm:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _installed = False
        except (ValueError, OSError):
            pass
