"""``health()``: ok / warning / critical with the reasons, for probes and people."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from memlens.core.record import field, record
from memlens.core.units import format_bytes, format_duration
from memlens.service.leaks import LeakAlert
from memlens.service.thresholds import CRITICAL, OK, WARNING

_RANK = {OK: 0, WARNING: 1, CRITICAL: 2}

# An active leak that reaches the critical threshold sooner than this is critical.
LEAK_CRITICAL_HORIZON = 3600.0


@record(frozen=True)
class Health:
    """The monitor's verdict; ``status`` is the worst of ``reasons``' levels."""

    status: str
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def code(self) -> int:
        """0 ok, 1 warning, 2 critical (for gauges)."""
        return _RANK[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reasons": list(self.reasons), "checks": dict(self.checks)}


def evaluate(
    *,
    enabled: bool,
    running: bool,
    threshold_state: str,
    rss: int,
    warning_bytes: int,
    critical_bytes: int,
    leaks: Sequence[LeakAlert],
    meter_errors: int,
    last_error: str | None,
    events_dropped: int,
    failing: Mapping[str, str] | None = None,
) -> Health:
    """Combine the monitor's state into one :class:`Health`."""
    status = OK
    reasons: list[str] = []

    def worsen(level: str, reason: str) -> None:
        nonlocal status
        reasons.append(f"{level}: {reason}")
        if _RANK[level] > _RANK[status]:
            status = level

    if not enabled:
        worsen(WARNING, "monitoring is off (mode='off')")
    elif not running:
        worsen(WARNING, "the memlens monitor thread is not running")
    if threshold_state == CRITICAL:
        worsen(
            CRITICAL,
            f"RSS {format_bytes(rss)} is above the critical threshold {format_bytes(critical_bytes)}",
        )
    elif threshold_state == WARNING:
        worsen(
            WARNING,
            f"RSS {format_bytes(rss)} is above the warning threshold {format_bytes(warning_bytes)}",
        )
    for leak in leaks:
        text = f"leak suspected in {leak.component} at {leak.growth_rate_mb_per_min:.2f} MB/min (id {leak.id})"
        projected = leak.projected_seconds_to_critical
        if projected is not None and projected < LEAK_CRITICAL_HORIZON:
            worsen(CRITICAL, text + f", critical threshold in {format_duration(projected)}")
        else:
            worsen(WARNING, text)
    for meter, error in (failing or {}).items():
        # a meter that cannot read is not "ok": its figures are stale or missing
        worsen(WARNING, f"meter {meter} failed at the last sample ({error})")
    checks = {
        "monitor_running": running,
        "threshold_state": threshold_state,
        "rss_bytes": rss,
        "active_leaks": len(leaks),
        "meter_errors": meter_errors,
        "last_meter_error": last_error,
        "events_dropped": events_dropped,
        "failing_meters": sorted(failing or {}),
    }
    return Health(status, reasons, checks)
