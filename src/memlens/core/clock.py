"""Clocks: monotonic seconds for durations, UTC for timestamps; injectable for tests.

Everything in memlens that needs time takes a :class:`Clock`, so tests can simulate
hours or days of sampling instantly with :class:`ManualClock`.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Where memlens reads time from."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch (UTC)."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to; for tests and simulations."""

    def __init__(self, start: float = 0.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds


SYSTEM_CLOCK = SystemClock()


def utc_iso(epoch_seconds: float) -> str:
    """ISO 8601 UTC text for an epoch time."""
    from datetime import datetime, timezone  # here: 0.4 MiB the always-on monitor rarely needs

    return datetime.fromtimestamp(epoch_seconds, timezone.utc).isoformat(timespec="seconds")
