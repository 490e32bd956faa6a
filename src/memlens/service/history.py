"""The monitor's history: save it, and continue it after a restart.

A monitor's session (``kind="monitor"``) shares the live series; flushing snapshots
it under the recorder's lock, and a restarted service continues the saved series on
the same time axis when the clocks agree.

With a SQLite store (the default) the history goes to the service's history file
next to the database (:mod:`memlens.core.history_file`), not into the database: the
watched process never loads ``sqlite3``, the store, ``json`` or the findings model
(about 6 MiB, issue #15). The store brings the file in whenever any memlens command
opens it, so ``monitor-<service>`` is listed, shown and reported as before. A Redis
store, or a store handed to the monitor, is written through the store as before.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from memlens.core.session import RUNNING, Metadata, Session, utc_now_iso
from memlens.service.growth import diagnosis_dict

if TYPE_CHECKING:
    from memlens.core.series import Series
    from memlens.service.monitor import Monitor


def destination(mon: Monitor) -> str | None:
    """The monitor's history file, or ``None`` when its history goes through a store.

    Decided once, on first use (the target may name a path relative to the
    directory the service started in).
    """
    if mon._history_path is not None:
        return mon._history_path or None
    # Here, not at the top: a monitor that persists nothing never loads them.
    from memlens.core import history_file
    from memlens.core.store_target import default_target, is_url, sqlite_path

    path = ""
    if mon._store is None:
        target = str(mon.config.db_path or "") or default_target()
        if not is_url(target):
            db = sqlite_path(target)
            if db and db != ":memory:":
                path = history_file.path_for(
                    os.path.abspath(os.path.expanduser(db)), mon.session_id
                )
    mon._history_path = path
    return path or None


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
        # The findings model's dict, built without it (it would load dataclasses).
        analyses={"diagnosis": diagnosis_dict(mon)},
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
    # points("rss")[0] and their highest max, without building every point (~1.8 MiB
    # of records for a full 30-day history, on every flush)
    found = mon.series.first_and_highest("rss")
    peak = int(mon.latest.get("peak_rss", rss))
    if found is None:
        return {"start_rss": rss, "peak_rss": max(peak, rss), "duration": 0.0}
    first, highest = found
    return {
        "start_rss": int(first.mean),
        # VmHWM is this process's own peak: the history may hold a higher one
        "peak_rss": int(max(peak, highest, rss)),
        "duration": max(0.0, mon.now() - first.start),
    }


def flush(mon: Monitor, status: str = RUNNING) -> bool:
    """Save the history now (its file, or the store); ``False`` (counted) on failure."""
    try:
        path = destination(mon)
        if path is None:
            store = store_of(mon)
            with mon._series_lock():
                store.save(mon.to_session(status))
        else:
            from memlens.core import history_file

            with mon._series_lock():
                data = _file_data(mon, status)  # a copy: encoded outside the lock
            history_file.write(path, data)
    except Exception as exc:  # noqa: BLE001 - persistence must never break the service
        mon.flush_errors += 1
        mon.last_flush_error = f"{type(exc).__name__}: {exc}"
        return False
    mon.last_flush = mon.clock.wall()
    return True


def _file_data(mon: Monitor, status: str) -> dict[str, Any]:
    """The session dict for the history file, with the series packed, not listed."""
    from memlens.core import history_file
    from memlens.core.series import Series

    session = mon.to_session(status)
    live, session.series = session.series, Series()  # to_dict would list every row
    data = session.to_dict()
    data["series"] = history_file.pack_series(live)
    return data


def restore(mon: Monitor) -> None:
    """Continue the saved history of this service, if any."""
    try:
        path = destination(mon)
        found = _from_store(mon) if path is None else _from_file(path)
        if found is None:
            return
        series, wall_origin = found
    except Exception as exc:  # noqa: BLE001 - a bad history must not stop monitoring
        mon.flush_errors += 1
        mon.last_flush_error = f"restore {type(exc).__name__}: {exc}"
        return
    elapsed = mon.clock.wall() - wall_origin
    times = series.times()
    if not math.isfinite(elapsed) or elapsed < 0 or (times and times[-1] > elapsed):
        return  # clocks disagree: keep a fresh history rather than a wrong one
    # Series times are seconds since wall_origin; continue on the same axis.
    mon.series = series
    mon.recorder.series = mon.series
    mon.wall_origin = wall_origin
    mon.origin = mon.clock.monotonic() - elapsed
    mon.recorder.origin = mon.origin
    mon.run_start_t = elapsed
    mon._last_flush_t = elapsed
    mon._metadata = Metadata()


def _from_store(mon: Monitor) -> tuple[Series, float] | None:
    store = store_of(mon)
    if not any(r.id == mon.session_id for r in store.list(kind="monitor", verify=False)):
        return None
    stored = store.load(mon.session_id)
    return stored.series, float(stored.tags.get("wall_origin", "nan"))


def _from_file(path: str) -> tuple[Series, float] | None:
    from memlens.core import history_file

    try:
        data, _digest = history_file.read(path)
    except FileNotFoundError:
        return None
    except history_file.HistoryFileError:
        # Keep the damaged file for inspection (the next flush writes a fresh one);
        # what the store brought in from it earlier stays stored.
        os.replace(path, path + ".corrupt")
        raise
    series = history_file.series_of(data, f"history file {path}")
    try:
        wall_origin = float(data.get("tags", {}).get("wall_origin", "nan"))
    except (TypeError, ValueError, AttributeError) as exc:
        raise history_file.HistoryFileError(f"history file {path} has no time origin") from exc
    return series, wall_origin
