"""Shared test helpers: a context held open by another thread, and a check in a forked child."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def held_by_another_thread(cm: Callable[[], Any]) -> Iterator[None]:
    """Enter ``cm()`` on a new thread and keep it entered for the duration of the block."""
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with cm():
            inside.set()
            leave.wait()

    thread = threading.Thread(target=hold)
    thread.start()
    inside.wait()
    try:
        yield
    finally:
        leave.set()
        thread.join()


def in_forked_child(check: Callable[[], bool]) -> bool:
    """Fork, run ``check()`` in the child (exit 0 if it holds), and return whether it did."""
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(0 if check() else 1)
        except BaseException:  # noqa: BLE001 - the child must never return into pytest
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0
