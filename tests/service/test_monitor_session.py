"""A monitor's stored session says what happened (issue #14): its start RSS, peak and
duration over the whole history (restarts included), no raw empty leak section, no
"--no-trace", and a plain ``kill`` (SIGTERM) still gets the final flush."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from memlens.core.clock import ManualClock
from memlens.core.config import Config
from memlens.report.html import render_html
from memlens.report.terminal import render_text
from memlens.service import Monitor
from memlens.store import open_store
from tests.service.helpers import MB


def _run(cfg: Config, clock: ManualClock, values: dict, seconds: int, step: int) -> None:
    monitor = Monitor(cfg, clock=clock, readers=[lambda: dict(values)]).start(thread=False)
    for _ in range(seconds):
        clock.advance(1)
        values["rss"] += step
        monitor.sample_now()
    monitor.stop()


def test_start_peak_and_duration_cover_every_run(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    clock = ManualClock()
    cfg = Config(mode="standard", db_path=str(db), service_name="api", history_flush_interval=60)
    values = {"rss": 50 * MB}
    _run(cfg, clock, values, 300, 100_000)  # 50 MiB -> ~78.6 MiB
    first = open_store(db).load("monitor-api")
    assert first.start_rss == 50 * MB
    assert first.growth == 300 * 100_000
    assert first.duration == 300
    clock.advance(600)
    values["rss"] = 60 * MB  # the restarted process starts lower
    _run(cfg, clock, values, 100, 10_000)
    both = open_store(db).load("monitor-api")
    assert both.start_rss == 50 * MB  # the history's start, not this run's
    assert both.peak_rss == 50 * MB + 300 * 100_000  # the first run's peak is kept
    assert both.duration == 300 + 600 + 100
    assert "leaks" not in both.analyses  # no active leaks: no raw "[]" section
    text = render_text(both)
    assert "--no-trace" not in text
    both.analyses = {"leaks": [LEAK]}
    page = render_html(both)
    assert "Leak alerts (1)" in page and "cache.py:12" not in page.split("Leak alerts")[0]
    assert "2.50 MB/min" in page


LEAK = {
    "id": "L1",
    "component": "cache",
    "metric": "rss",
    "growth_rate_mb_per_min": 2.5,
    "current_bytes": 80 * MB,
    "first_seen": "2026-01-01T00:00:00Z",
    "recommendation": "bound the cache in cache.py:12",
}


SERVICE = textwrap.dedent(
    """
    import time
    from memlens.core.config import Config
    from memlens.service import Monitor
    cfg = Config(mode="production", db_path={db!r}, service_name="svc",
                 history_flush_interval=3600, sampling_interval=0.05)
    Monitor(cfg).start()
    print("ready", flush=True)
    time.sleep(600)
    """
)


def test_sigterm_still_flushes_the_session(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    script = tmp_path / "svc.py"
    script.write_text(SERVICE.format(db=str(db)))
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM, stderr  # still ends by SIGTERM
    stored = open_store(db).load("monitor-svc")
    assert stored.status == "completed" and stored.metadata.ended_at
    assert stored.series.count >= 1


def test_a_program_with_its_own_sigterm_handler_keeps_it(tmp_path: Path) -> None:
    script = tmp_path / "own.py"
    script.write_text(
        textwrap.dedent(
            """
            import signal, sys, time
            from memlens.core.config import Config
            from memlens.service import Monitor
            signal.signal(signal.SIGTERM, lambda *a: (print("mine", flush=True), sys.exit(3)))
            Monitor(Config(mode="production", persist_history=False)).start()
            print("ready", flush=True)
            time.sleep(600)
            """
        )
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3 and "mine" in out


def test_export_of_a_monitor_session_says_what_it_wrote(tmp_path: Path) -> None:
    import csv

    from tests.memlens_cli import memlens

    db = tmp_path / "m.db"
    clock = ManualClock()
    cfg = Config(
        mode="standard",
        db_path=str(db),
        service_name="api",
        history_flush_interval=60,
        raw_history_seconds=60,
    )
    _run(cfg, clock, {"rss": 50 * MB}, 300, 1000)
    stored = open_store(db).samples("monitor-api")
    held, recorded = len(stored), stored.count
    assert held < recorded == 301
    raw = memlens("export", "monitor-api", "-o", str(tmp_path / "raw.csv"), db=db)
    assert raw.returncode == 0, raw.stderr
    assert f"{held} raw samples of {recorded} recorded" in raw.stderr
    assert "--history" in raw.stderr
    assert len((tmp_path / "raw.csv").read_text().splitlines()) == held + 1
    full = memlens("export", "monitor-api", "--history", "-o", str(tmp_path / "h.csv"), db=db)
    assert full.returncode == 0, full.stderr
    rows = list(csv.DictReader((tmp_path / "h.csv").open()))
    assert float(rows[0]["t"]) == 0.0 and float(rows[0]["width"]) > 0  # an aggregate window
    covered = sum(int(r["count"]) for r in rows)
    # every sample is in a window or raw, except those of the 1-minute window that the
    # raw ring starts inside (the series shows the raw samples there instead)
    assert recorded - 60 < covered <= recorded
    assert float(rows[-1]["rss_max"]) == 50 * MB + 300 * 1000
