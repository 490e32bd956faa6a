"""Warning/critical thresholds with hysteresis, so a value hovering at a line does not flap.

A level is entered when the value reaches its threshold and left only when the value
falls below ``threshold * (1 - hysteresis)``. Each transition is reported once.
"""

from __future__ import annotations

from memlens.core.record import record

OK, WARNING, CRITICAL = "ok", "warning", "critical"
_RANK = {OK: 0, WARNING: 1, CRITICAL: 2}


@record(frozen=True)
class Transition:
    """A change of state: ``level`` is the threshold crossed, ``upward`` its direction."""

    level: str
    upward: bool
    value: int
    threshold: int


class ThresholdTracker:
    """Tracks which threshold one metric is over (see module docstring)."""

    def __init__(self, warning: int, critical: int, hysteresis: float = 0.05) -> None:
        if critical < warning:
            raise ValueError("critical threshold below warning threshold")
        if not 0 <= hysteresis < 0.5:
            raise ValueError("hysteresis must be a fraction from 0 up to 0.5")
        self.warning = warning
        self.critical = critical
        self.hysteresis = hysteresis
        self.state = OK
        self.last_value = 0

    def update(self, value: int) -> list[Transition]:
        """Feed a new value; return the transitions it caused (usually none)."""
        self.last_value = value
        out: list[Transition] = []
        keep = 1.0 - self.hysteresis
        # Upward: straight to the highest level reached.
        if self.state != CRITICAL and value >= self.critical:
            if self.state == OK:
                out.append(Transition(WARNING, True, value, self.warning))
            out.append(Transition(CRITICAL, True, value, self.critical))
            self.state = CRITICAL
            return out
        if self.state == OK and value >= self.warning:
            self.state = WARNING
            return [Transition(WARNING, True, value, self.warning)]
        # Downward: only once below the band.
        if self.state == CRITICAL and value < self.critical * keep:
            out.append(Transition(CRITICAL, False, value, self.critical))
            self.state = WARNING
        if self.state == WARNING and value < self.warning * keep:
            out.append(Transition(WARNING, False, value, self.warning))
            self.state = OK
        return out

    @property
    def rank(self) -> int:
        return _RANK[self.state]
