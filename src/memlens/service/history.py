"""The monitor's history in the session store: save it, and continue it after a restart.

A monitor's session (``kind="monitor"``) shares the live series; flushing saves it
under the recorder's lock, and a restarted service continues the stored series on
the same time axis when the clocks agree.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from memlens.core.session import RUNNING, Metadata, Session, utc_now_iso

if TYPE_CHECKING:
    from memlens.service.monitor import Monitor


def store_of(mon: Monitor) -> Any:
    """The monitor's session store, opened on first use."""
    if mon._store is None:
        from memlens.store import open_store

        mon._store = open_store(mon.config.db_path)
    return mon._store


def to_session(mon: Monitor, status: str = RUNNING) -> Session:
    """The monitor's state as a ``Session(kind="monitor")`` (shares the live series)."""
    rss = int(mon.latest.get("rss", 0))
    span = _span(mon, rss)
    leaks = mon.get_active_leaks()
    session = Session(
        name=mon.name,
        id=mon.session_id,
        kind="monitor",
        status=status,
        interval=mon.interval,
        duration=span["duration"],
        traced=mon.heapwatch.tracing,
        trace_depth=mon.heapwatch.heap.depth if mon.heapwatch.tracing else 0,
        series=mon.series,
        peak_rss=span["peak_rss"],
        start_rss=span["start_rss"],
        final_rss=rss,
        top_sites=mon.top_sites(),
        gc=mon.gc_stats(),
        components=list(mon.heapwatch.usage().values()),
        metadata=mon._metadata,
        tags={"wall_origin": repr(mon.wall_origin), "mode": mon.config.mode},
        analyses={"diagnosis": mon.diagnosis().to_dict()},
    )
    if leaks:  # an empty list would show as a raw "[]" section in the report
        session.analyses["leaks"] = leaks
    if status != RUNNING:
        session.metadata.ended_at = utc_now_iso()
    return session


def _span(mon: Monitor, rss: int) -> dict[str, Any]:
    """Start RSS, peak RSS and duration over the whole stored history.

    After a restart that continued the stored series, the session covers every run
    in it, not only this process's: its start is the series' first sample.
    """
    points = mon.series.points("rss")
    peak = int(mon.latest.get("peak_rss", rss))
    if not points:
        return {"start_rss": rss, "peak_rss": max(peak, rss), "duration": 0.0}
    first = points[0]
    highest = max(p.max for p in points if math.isfinite(p.max))
    return {
        "start_rss": int(first.mean),
        # VmHWM is this process's own peak: the history may hold a higher one
        "peak_rss": int(max(peak, highest, rss)),
        "duration": max(0.0, mon.now() - first.start),
    }


def flush(mon: Monitor, status: str = RUNNING) -> bool:
    """Save the history to the session store now; ``False`` (counted) on failure."""
    try:
        store = store_of(mon)
        with mon._series_lock():
            store.save(mon.to_session(status))
    except Exception as exc:  # noqa: BLE001 - persistence must never break the service
        mon.flush_errors += 1
        mon.last_flush_error = f"{type(exc).__name__}: {exc}"
        return False
    mon.last_flush = mon.clock.wall()
    return True


def restore(mon: Monitor) -> None:
    """Continue the stored history of this service, if any."""
    try:
        store = store_of(mon)
        if not any(r.id == mon.session_id for r in store.list(kind="monitor", verify=False)):
            return
        stored = store.load(mon.session_id)
        wall_origin = float(stored.tags.get("wall_origin", "nan"))
    except Exception as exc:  # noqa: BLE001 - a bad history must not stop monitoring
        mon.flush_errors += 1
        mon.last_flush_error = f"restore {type(exc).__name__}: {exc}"
        return
    elapsed = mon.clock.wall() - wall_origin
    times = stored.series.times()
    if not math.isfinite(elapsed) or elapsed < 0 or (times and times[-1] > elapsed):
        return  # clocks disagree: keep a fresh history rather than a wrong one
    # Series times are seconds since wall_origin; continue on the same axis.
    mon.series = stored.series
    mon.recorder.series = mon.series
    mon.wall_origin = wall_origin
    mon.origin = mon.clock.monotonic() - elapsed
    mon.recorder.origin = mon.origin
    mon.run_start_t = elapsed
    mon._last_flush_t = elapsed
    mon._metadata = Metadata()
