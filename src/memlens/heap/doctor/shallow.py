"""Run the doctor's own heavy work on a helper thread with a shallow stack.

While tracemalloc traces, every allocation captures up to ``nframes`` frames of the
allocating thread's stack, so bookkeeping that runs under a deep stack (a CLI, a
pytest run) pays for all those frames on each of its many small allocations. A
helper thread's stack is a few frames deep, which makes the same work several times
cheaper; the caller simply waits for it. One long-lived daemon thread is reused so
that no thread objects (and their reference cycles) are created per checkpoint.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_worker: tuple[int, queue.SimpleQueue[Any]] | None = None


def _serve(tasks: queue.SimpleQueue[Any]) -> None:
    while True:
        fn, args, box, done = tasks.get()
        try:
            box.append(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box.append(exc)
            box.append(_FAILED)
        finally:
            del fn, args
            done.release()


_FAILED = object()


def _tasks() -> queue.SimpleQueue[Any]:
    global _worker
    with _lock:
        # After os.fork() the thread is gone: start a new one in the child.
        if _worker is None or _worker[0] != os.getpid():
            tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
            thread = threading.Thread(
                target=_serve, args=(tasks,), name="memlens-doctor", daemon=True
            )
            thread.start()
            _worker = (os.getpid(), tasks)
        return _worker[1]


def run_shallow(fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn(*args)`` on the ``memlens-doctor`` thread and wait; re-raise errors."""
    if threading.current_thread().name == "memlens-doctor":
        return fn(*args)
    box: list[Any] = []
    done = threading.Lock()
    done.acquire()
    _tasks().put((fn, args, box, done))
    done.acquire()
    if len(box) == 2 and box[1] is _FAILED:
        raise box[0]
    return box[0]
