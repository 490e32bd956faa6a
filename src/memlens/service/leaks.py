"""Leak alerts an operator can trust.

A memory series is judged on its *floor*: it is collapsed to per-window minima so a
request's temporary buffers do not count, then the Theil–Sen slope gives the rate
and a Hamed–Rao-corrected Mann–Kendall test the significance (samples of one
process are autocorrelated, which fools a plain test). An alert needs all of:

- data past the warm-up (start-up allocations and caches filling are not leaks);
- enough span and points for the test to mean something;
- a significant upward trend (p < ``alpha``) faster than the minimum rate, both
  over the window and in its recent part;
- no plateau and no marked deceleration (a cache approaching its bound slows down;
  a leak keeps its pace).

An active alert ends (``LeakCleared``) after ``clear_after`` consecutive
evaluations without growth, or when an operator clears it; after a manual clear
only data from that moment on can raise it again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from memlens.core.clock import utc_iso
from memlens.core.record import field, record
from memlens.core.session import AllocationSite
from memlens.core.trend import Trend, assess_trend, window_minima
from memlens.core.units import format_bytes, format_duration

if TYPE_CHECKING:
    from memlens.core.findings import Finding

MB = 1024 * 1024


@record(frozen=True)
class GrowthAssessment:
    """The verdict on one series: ``growing`` plus the evidence behind it."""

    growing: bool
    reason: str
    slope: float = 0.0  # bytes per second
    recent_slope: float = 0.0
    p_value: float = 1.0
    points: int = 0
    span: float = 0.0


def assess_growth(
    ts: Sequence[float],
    ys: Sequence[float],
    *,
    min_bucket: float,
    min_rate: float,
    alpha: float = 0.01,
    min_span: float = 120.0,
    min_points: int = 8,
    deceleration: float = 0.5,
) -> GrowthAssessment:
    """Is ``ys`` (bytes at times ``ts``, seconds) leaking faster than ``min_rate`` B/s?"""
    if len(ts) < 2:
        return GrowthAssessment(False, "not enough data")
    span = ts[-1] - ts[0]
    if span < min_span:
        return GrowthAssessment(False, "not enough data", span=span)
    # ~30 windows over the span, but never fewer samples per window than min_bucket
    # allows: the minimum of one sample does not hide a spike.
    bucket = max(min_bucket, span / 30.0)
    xs, floors = window_minima(ts, ys, bucket)
    if len(xs) < min_points:
        return GrowthAssessment(False, "not enough data", points=len(xs), span=span)
    trend: Trend = assess_trend(xs, floors)
    base = GrowthAssessment(
        False, "", trend.slope, trend.recent_slope, trend.p_value, trend.n, span
    )
    if trend.slope <= min_rate:
        reason = "no growth" if trend.slope <= 0 else "growth below the minimum rate"
    elif trend.p_value >= alpha:
        reason = "growth not significant"
    elif trend.plateaued:
        reason = "plateaued"
    elif trend.recent_slope <= min_rate or trend.recent_slope < deceleration * trend.slope:
        reason = "decelerating"
    else:
        return GrowthAssessment(True, "sustained growth", *_evidence(base))
    return GrowthAssessment(False, reason, *_evidence(base))


def _evidence(a: GrowthAssessment) -> tuple[float, float, float, int, float]:
    return a.slope, a.recent_slope, a.p_value, a.points, a.span


@record
class LeakAlert:
    """One active leak alert (see :meth:`to_dict` for the public shape)."""

    id: str
    component: str
    metric: str
    growth_rate: float  # bytes per second
    first_seen: float  # UTC epoch seconds
    last_updated: float
    current_bytes: int
    p_value: float
    projected_seconds_to_critical: float | None
    recommendation: str = ""
    sites: list[AllocationSite] = field(default_factory=list)

    @property
    def growth_rate_mb_per_min(self) -> float:
        return self.growth_rate * 60.0 / MB

    def to_dict(self) -> dict[str, Any]:
        projected = self.projected_seconds_to_critical
        return {
            "id": self.id,
            "component": self.component,
            "metric": self.metric,
            "growth_rate_bytes_per_second": self.growth_rate,
            "growth_rate_mb_per_min": round(self.growth_rate_mb_per_min, 4),
            "first_seen": utc_iso(self.first_seen),
            "last_updated": utc_iso(self.last_updated),
            "current_bytes": self.current_bytes,
            "p_value": self.p_value,
            "projected_seconds_to_critical": projected,
            "projected_time_to_critical": (
                utc_iso(self.last_updated + projected)
                if projected is not None and math.isfinite(projected)
                else None
            ),
            "recommendation": self.recommendation,
            "sites": [
                {
                    "location": s.location,
                    "function": s.function,
                    "size": s.size,
                    "size_diff": s.size_diff,
                    "count_diff": s.count_diff,
                    "component": s.component,
                }
                for s in self.sites
            ],
        }

    def to_finding(self) -> Finding:
        """This alert in the shared findings vocabulary (a rate in bytes per second)."""
        from memlens.core.findings import Finding  # needs dataclasses: on demand

        return Finding.from_dict(self.finding_dict())

    def finding_dict(self) -> dict[str, Any]:
        """What ``to_finding().to_dict()`` returns, built without the findings model.

        The history flush writes it, so persisting history never loads dataclasses;
        :meth:`to_finding` reads it back, so the two cannot drift apart.
        """
        projected = self.projected_seconds_to_critical
        soon = projected is not None and projected < 3600
        remedies = []
        if self.recommendation:
            remedies.append(
                {
                    "title": self.recommendation,
                    "snippet": "",
                    "effort": "",
                    "saving": 0.0,
                    "unit": "bytes",
                }
            )
        return {
            "category": "sustained_growth",
            "site": "",
            "severity": "critical" if soon else "high",
            "summary": f"{self.component} {self.metric} grows steadily "
            f"({format_bytes(self.growth_rate * 60, signed=True)} per minute)",
            "amount": self.growth_rate,
            "unit": "bytes",
            "per": "second",
            "items": [s.location for s in self.sites],
            "root": "",
            "path": [],
            "why": "the floor of the series (per-window minima) rises at a significant, "
            "steady rate past the warm-up",
            "remedies": remedies,
            "evidence": {"p_value": self.p_value, "current_bytes": self.current_bytes},
            "details": {
                "id": self.id,
                "component": self.component,
                "metric": self.metric,
                "first_seen": utc_iso(self.first_seen),
                "last_updated": utc_iso(self.last_updated),
                "projected_seconds_to_critical": projected,
            },
        }


def projected_seconds(current: float, critical: float, rate: float) -> float | None:
    """Seconds until ``current`` reaches ``critical`` at ``rate`` B/s (None if never)."""
    if rate <= 0:
        return None
    return max(0.0, (critical - current) / rate)


def recommend(
    component: str,
    rate: float,
    projected: float | None,
    sites: Sequence[AllocationSite],
    tracing: bool,
) -> str:
    """Plain advice for an alert: what it likely is and what to do next."""
    parts = [f"{component} grows steadily at {rate * 60 / MB:.2f} MB/min"]
    if projected is not None:
        parts[0] += f" and reaches the critical threshold in about {format_duration(projected)}"
    parts[0] += "."
    if sites:
        top = sites[0]
        parts.append(
            f"Largest growth: {top.location} in {top.function or '?'} "
            f"({format_bytes(top.size_diff, signed=True)})."
        )
        parts.append(
            "Check what keeps these objects alive: an unbounded cache or dict keyed per "
            "request, a list appended to and never trimmed, or listeners never removed; "
            "bound it (LRU with maxsize, TTL) or release entries when done."
        )
    elif tracing:
        parts.append(
            "No Python allocation site grows with it: suspect native memory (C "
            "extensions, buffers, arenas) or fragmentation; compare USS with traced bytes."
        )
    else:
        parts.append(
            "Enable tracemalloc (mode='advanced' or add 'tracemalloc' to enabled_backends) "
            "to name the growing allocation sites, or run `memlens doctor` on the workload."
        )
    return " ".join(parts)


class LeakTracker:
    """Keeps the active alerts per tracked series and decides when they start and end."""

    def __init__(self, clear_after: int = 3) -> None:
        self.clear_after = clear_after
        self.alerts: dict[str, LeakAlert] = {}  # key -> alert
        self.total_alerts = 0
        self._quiet: dict[str, int] = {}
        self._rearm: dict[str, float] = {}  # key -> series time from which data counts

    def since(self, key: str, default: float) -> float:
        """The earliest series time this key's data may come from."""
        return max(default, self._rearm.get(key, default))

    def update(
        self,
        key: str,
        component: str,
        assessment: GrowthAssessment,
        *,
        now_wall: float,
        current: int,
        projected: float | None,
    ) -> tuple[LeakAlert | None, LeakAlert | None]:
        """Apply an assessment; returns ``(new_alert, ended_alert)`` (either may be None)."""
        alert = self.alerts.get(key)
        if assessment.growing:
            self._quiet[key] = 0
            if alert is not None:
                alert.growth_rate = assessment.slope
                alert.p_value = assessment.p_value
                alert.last_updated = now_wall
                alert.current_bytes = current
                alert.projected_seconds_to_critical = projected
                return None, None
            alert = LeakAlert(
                id="leak-" + _new_id(),
                component=component,
                metric=key,
                growth_rate=assessment.slope,
                first_seen=now_wall,
                last_updated=now_wall,
                current_bytes=current,
                p_value=assessment.p_value,
                projected_seconds_to_critical=projected,
            )
            self.alerts[key] = alert
            self.total_alerts += 1
            return alert, None
        if alert is None:
            return None, None
        quiet = self._quiet.get(key, 0) + 1
        self._quiet[key] = quiet
        if quiet >= self.clear_after:
            del self.alerts[key]
            self._quiet.pop(key, None)
            return None, alert
        return None, None

    def clear(self, leak_id: str | None, series_time: float) -> list[LeakAlert]:
        """Remove one alert (or all); they need fresh evidence from ``series_time`` on."""
        removed = []
        for key, alert in list(self.alerts.items()):
            if leak_id is None or alert.id == leak_id:
                removed.append(alert)
                del self.alerts[key]
                self._quiet.pop(key, None)
                self._rearm[key] = series_time
        return removed

    def active(self) -> list[LeakAlert]:
        alerts = list(self.alerts.values())  # copied first: the sampling thread may change it
        return sorted(alerts, key=lambda a: -a.growth_rate)


def _new_id() -> str:
    """Ten random hex digits (``uuid`` is imported only when an alert is raised)."""
    import uuid

    return uuid.uuid4().hex[:10]
