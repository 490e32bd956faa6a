"""Live progress of a doctor run on a terminal: iterations, checkpoints, elapsed, estimate.

Shown only on a TTY and only once a run has lasted ``delay`` seconds (short runs
stay quiet); nothing is ever written to a pipe or a file.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from rich.console import Console
from rich.status import Status

from memlens.core.units import format_bytes, format_duration

_BYTES = ("site", "native", "garbage")


def describe(engine: Any) -> str:
    """One line: ``412 iterations · 14 checkpoints · 3.1 s · top growth +1.1 KiB per call``."""
    text = (
        f"doctor: {engine.iterations:,} iterations · {len(engine.checkpoints)} checkpoints"
        f" · {format_duration(engine.elapsed)}"
    )
    signals = getattr(engine, "signals", None) or []
    if signals:
        top = signals[0]
        if top.kind in _BYTES:
            rate = format_bytes(top.growth.rate, signed=True)
        else:
            rate = f"+{top.growth.rate:.2g} entries"
        text += f" · top growth {rate} per call ({top.growth.state})"
    elif len(engine.checkpoints) >= 2:
        text += " · nothing growing so far"
    if getattr(engine, "growth_seen_at", 0):
        text += f" · watching whether it levels off (since {engine.growth_seen_at:,})"
    return text


class Progress:
    """A callable for ``doctor(progress=...)``; :meth:`stop` before printing the report."""

    def __init__(self, stream: IO[str] | None = None, delay: float = 2.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._status: Status | None = None

    def __call__(self, engine: Any) -> None:
        if not self.enabled or engine.elapsed < self.delay:
            return
        if self._status is None:
            console = Console(file=self.stream, stderr=self.stream is sys.stderr)
            self._status = Status(describe(engine), console=console)
            self._status.start()
        else:
            self._status.update(describe(engine))

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
