"""A spinner for long work on a terminal: shown only on a TTY, only after a delay.

``with busy("memlens: finishing the session") as say: ...`` shows nothing for short
work and nothing at all on a pipe or a file; past ``delay`` seconds a rich status
line appears on the stream, and ``say(text)`` changes what it says (the stage).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any


def is_tty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


@contextlib.contextmanager
def busy(
    message: str, stream: IO[str] | None = None, delay: float = 1.0
) -> Iterator[Callable[[str], None]]:
    """Show ``message`` with a spinner once the block has run ``delay`` seconds."""
    out = stream if stream is not None else sys.stderr
    if not is_tty(out):
        yield lambda _text: None
        return
    lock = threading.Lock()
    state: dict[str, Any] = {"text": message, "status": None, "done": False}

    def show() -> None:
        from rich.console import Console
        from rich.status import Status

        with lock:
            if state["done"]:
                return
            status = Status(state["text"], console=Console(file=out))
            status.start()
            state["status"] = status

    def say(text: str) -> None:
        with lock:
            state["text"] = text
            if state["status"] is not None:
                state["status"].update(text)

    timer = threading.Timer(delay, show)
    timer.daemon = True
    timer.start()
    try:
        yield say
    finally:
        timer.cancel()
        with lock:
            state["done"] = True
            if state["status"] is not None:
                state["status"].stop()
