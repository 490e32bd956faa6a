"""The monitor's growth checks over its own history: leak alerts and RSS trends.

Runs on the sampling thread every ``leak_check_interval`` (``check_leaks``) and on
request (``memory_trends``); the statistics themselves are in ``service/leaks.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memlens.core.errors import MemlensError
from memlens.core.trend import window_minima
from memlens.service.components import FIELD_PREFIX
from memlens.service.events import LeakCleared, LeakSuspected
from memlens.service.leaks import MB, LeakAlert, assess_growth, projected_seconds, recommend

if TYPE_CHECKING:
    from memlens.core.findings import Diagnosis
    from memlens.service.monitor import Monitor


def points(mon: Monitor, field: str, since: float) -> tuple[list[float], list[float]]:
    with mon._series_lock():
        if field not in mon.series.fields:
            return [], []
        aggs = mon.series.points(field, since)
    # Older history comes as windows: take each window's floor at its middle.
    return [a.start + a.width / 2 for a in aggs], [a.min for a in aggs]


def check_leaks(mon: Monitor, t: float | None = None) -> list[LeakAlert]:
    """Evaluate every tracked series now; publishes events; returns new alerts."""
    t = mon.now() if t is None else t
    cfg = mon.config
    min_rate = cfg.memory_growth_rate_threshold_mb_per_min * MB / 60.0
    start = max(mon._warmup_end, t - cfg.leak_window_seconds)
    rss_now = int(mon.latest.get("rss", 0))
    targets = [("rss", "process", 3 * mon.interval)]
    if mon.heapwatch.tracing or mon.heapwatch.sampling:
        snap = cfg.effective_snapshot_interval
        for name in mon.heapwatch.component_names:
            targets.append((FIELD_PREFIX + name, name, snap))
    new_alerts = []
    for key, component, bucket in targets:
        ts, ys = points(mon, key, mon.leaks.since(key, start))
        verdict = assess_growth(
            ts, ys, min_bucket=bucket, min_rate=min_rate, min_span=max(120.0, 8 * bucket)
        )
        current = int(ys[-1]) if ys else 0
        projected = projected_seconds(rss_now, cfg.critical_bytes, verdict.slope)
        new, ended = mon.leaks.update(
            key,
            component,
            verdict,
            now_wall=mon._wall(t),
            current=current,
            projected=projected,
        )
        if new is not None:
            sites = mon.heapwatch.growing_sites(
                limit=5, component=None if component == "process" else component
            )
            new.sites = sites
            new.recommendation = recommend(
                component,
                new.growth_rate,
                projected,
                sites,
                mon.heapwatch.tracing or mon.heapwatch.sampling,
            )
            new_alerts.append(new)
            mon.events.publish(
                LeakSuspected(
                    new.last_updated,
                    new.id,
                    component,
                    new.growth_rate_mb_per_min,
                    new.recommendation,
                    new.to_dict(),
                )
            )
        if ended is not None:
            mon.events.publish(LeakCleared(mon._wall(t), ended.id, ended.component, "stopped"))
    return new_alerts


def memory_trends(
    mon: Monitor, window_minutes: float = 10, max_points: int = 600
) -> dict[str, Any]:
    """RSS over the last ``window_minutes``: points, summary and growth verdict."""
    if not window_minutes > 0:
        raise MemlensError(f"invalid window_minutes={window_minutes!r}: must be above 0")
    t = mon.now()
    window = window_minutes * 60.0
    ts, ys = points(mon, "rss", t - window)
    cfg = mon.config
    verdict = assess_growth(
        ts,
        ys,
        min_bucket=3 * mon.interval,
        min_rate=cfg.memory_growth_rate_threshold_mb_per_min * MB / 60.0,
        min_span=max(60.0, 8 * mon.interval),
    )
    if len(ts) > max_points:
        ts, ys = window_minima(ts, ys, (ts[-1] - ts[0]) / max_points)
    return {
        "window_minutes": window_minutes,
        "samples": len(ts),
        "timestamps": [mon._wall(x) for x in ts],
        "rss_bytes": [int(y) for y in ys],
        "current_bytes": int(ys[-1]) if ys else None,
        "min_bytes": int(min(ys)) if ys else None,
        "max_bytes": int(max(ys)) if ys else None,
        "mean_bytes": int(sum(ys) / len(ys)) if ys else None,
        "growth_rate_bytes_per_second": verdict.slope,
        "growth_rate_mb_per_min": verdict.slope * 60.0 / MB,
        "growing": verdict.growing,
        "verdict": verdict.reason,
        "p_value": verdict.p_value,
    }


def diagnosis(mon: Monitor) -> Diagnosis[Any]:
    """The active leak alerts as a :class:`~memlens.core.findings.Diagnosis`."""
    from memlens.core.findings import Diagnosis  # here: the findings model needs dataclasses

    return Diagnosis.from_dict(diagnosis_dict(mon))


def diagnosis_dict(mon: Monitor) -> dict[str, Any]:
    """What ``diagnosis(mon).to_dict()`` returns, without loading the findings model.

    The history flush writes it; :func:`diagnosis` reads it back.
    """
    active = mon.leaks.active()
    return {
        "schema_version": 2,
        "target": mon.name,
        "verdict": "leak" if active else "no leak",
        "reason": f"{len(active)} active leak alert(s)" if active else "no sustained growth",
        "findings": [a.finding_dict() for a in active],
        "duration": 0.0,
        "notes": [],
        "details": {},
    }
