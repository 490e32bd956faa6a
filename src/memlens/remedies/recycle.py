"""Graceful recycling: the recovery ladder's last step, for gunicorn and uvicorn workers.

Operators cap leaky workers from outside (gunicorn ``max_requests``, uWSGI
``reload-on-rss``, Celery ``worker_max_memory_per_child``). These hooks close the
loop from inside: when the ladder's cheaper steps could not bring memory under the
threshold, the worker finishes its in-flight requests and exits, and the master
starts a fresh one. Both servers treat ``SIGTERM`` to a worker as "stop gracefully",
so that is what the hooks send (to this process only).

gunicorn (``gunicorn.conf.py``)::

    from memlens.remedies.recycle import gunicorn_post_worker_init as post_worker_init

uvicorn (in the application's lifespan/startup)::

    from memlens.remedies.recycle import enable_recycling, uvicorn_hook
    enable_recycling(uvicorn_hook(server))     # or uvicorn_hook() to signal this process

The monitor is configured as usual (``MEMLENS_*``, ``[tool.memlens]``): its warning
threshold is the ladder's target, its critical threshold and leak alerts trigger it.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from typing import Any

from memlens.remedies.ladder import RecoveryLadder

logger = logging.getLogger("memlens.remedies")


def signal_hook(sig: int = signal.SIGTERM) -> Callable[[], str]:
    """Send ``sig`` to this process (``SIGTERM``: graceful stop for gunicorn and uvicorn)."""

    def hook() -> str:
        pid = os.getpid()
        logger.warning("memlens: recycling worker %d (signal %s)", pid, signal.Signals(sig).name)
        os.kill(pid, sig)
        return f"sent {signal.Signals(sig).name} to worker {pid}"

    return hook


def gunicorn_hook(worker: Any) -> Callable[[], str]:
    """Recycle this gunicorn ``worker``: it stops accepting, finishes in-flight requests
    and exits; the arbiter starts a replacement (sync, gthread and uvicorn workers)."""

    def hook() -> str:
        worker.alive = False  # sync/gthread loops check this between requests
        return signal_hook(signal.SIGTERM)()

    return hook


def uvicorn_hook(server: Any = None) -> Callable[[], str]:
    """Stop uvicorn gracefully: ``server.should_exit = True`` when you have the
    ``uvicorn.Server``, else ``SIGTERM`` to this process (uvicorn's own handler)."""
    if server is None:
        return signal_hook(signal.SIGTERM)

    def hook() -> str:
        server.should_exit = True
        return "uvicorn server asked to exit after in-flight requests"

    return hook


def enable_recycling(
    hook: Callable[[], object], monitor: Any = None, **config: Any
) -> RecoveryLadder:
    """Turn the recovery ladder on, with ``hook`` as its last step, in ``monitor`` (default:
    the running monitor, else a new one from the config, ``config`` overriding it);
    returns the ladder."""
    if monitor is None:
        from memlens.service.monitor import Monitor, running_monitors

        running = running_monitors()  # e.g. started in the master and inherited by fork
        monitor = running[0] if running else Monitor.from_config(**config).start()
    ladder: RecoveryLadder = monitor.enable_recovery()
    ladder.set_recycle_hook(hook)
    return ladder


def gunicorn_post_worker_init(worker: Any) -> None:
    """A ready-made gunicorn ``post_worker_init`` server hook: monitor this worker and
    recycle it gracefully when recovery cannot bring its memory down."""
    enable_recycling(gunicorn_hook(worker))
