"""Fork survival, bounded history over 30 simulated days, restore after restart, autostart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from memlens.core.clock import ManualClock
from memlens.core.config import Config
from memlens.core.errors import ConfigError
from memlens.service import Monitor, autostart
from tests.service.helpers import MB


def wait_for(condition, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_keeps_monitoring() -> None:
    before_threads = set(threading.enumerate())
    mon = Monitor(Config(mode="standard", persist_history=False, sampling_interval=0.02)).start()
    try:
        assert wait_for(lambda: mon.samples >= 3)
        parent_samples = mon.samples
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: report over the pipe, never return into pytest
            try:
                fresh = mon.samples <= parent_samples
                ok = wait_for(lambda: mon.samples >= 5)
                names = [t.name for t in threading.enumerate()]
                report = {
                    "pid": os.getpid(),
                    "sampled": ok,
                    "fresh_history": fresh,
                    "running": mon.running,
                    "threads": names,
                    "meter_pid": mon.process.pid,
                    "rss": mon.current().get("rss", 0),
                    "health": mon.health().status,
                }
                os.write(write_fd, json.dumps(report).encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd) as fh:
            report = json.loads(fh.read())
        os.waitpid(pid, 0)
        assert report["pid"] == pid
        assert report["sampled"] and report["running"] and report["fresh_history"]
        assert "memlens-monitor" in report["threads"] and "memlens-events" in report["threads"]
        assert report["meter_pid"] == pid  # reads the child's own /proc entry
        assert report["rss"] > MB and report["health"] == "ok"
        # The parent is unaffected.
        before = mon.samples
        assert wait_for(lambda: mon.samples > before) and mon.process.pid == os.getpid()
    finally:
        mon.stop()
    # Only this monitor's threads: other tests' may still be winding down.
    ours = set(threading.enumerate()) - before_threads
    assert not any(t.name.startswith("memlens-") and t.is_alive() for t in ours)


def test_history_stays_bounded_over_30_simulated_days() -> None:
    clock = ManualClock()
    fields = ("rss", "vms", "peak_rss", "swap", "uss", "pss", "traced", "traced_peak")
    fields += ("gc_collections", "gc_collected", "gc_uncollectable", "gc_pause", "gc_objects")

    def reader() -> dict[str, float]:
        t = clock.monotonic()
        return {name: 100 * MB + (t % 3600) + i for i, name in enumerate(fields)}

    # 1 Hz raw capacity (an hour), fed every 10 s so that 30 days fit in a test:
    # the rings fill completely either way, so the size is the 1 Hz size.
    mon = Monitor(
        Config(
            mode="standard",
            persist_history=False,
            sampling_interval=1.0,
            leak_check_interval=86_400,
        ),
        clock=clock,
        readers=[reader],
    )
    mon.start(thread=False)
    sizes = []
    for _day in range(31):
        for _ in range(8640):
            clock.advance(10)
            mon.sample_now()
        sizes.append(mon.series.nbytes())
    assert mon.samples == 31 * 8640 + 1
    assert sizes[-1] < 5 * MB
    assert sizes[-1] == sizes[-2]  # all rings full: it no longer grows
    serialized = len(json.dumps(mon.series.to_dict()))
    assert serialized < 5 * MB
    # Old history is still answerable from the hourly tier.
    oldest = mon.series.points("rss", since=0)[0]
    assert oldest.width == 3600.0
    assert mon.get_memory_trends(window_minutes=60 * 24)["samples"] > 0
    mon.stop()


def test_history_is_flushed_and_restored_after_restart(tmp_path: Path) -> None:
    db = tmp_path / "memlens.db"
    clock = ManualClock()
    values = {"rss": 50 * MB}
    cfg = Config(mode="standard", db_path=str(db), service_name="api", history_flush_interval=60)
    first = Monitor(cfg, clock=clock, readers=[lambda: dict(values)]).start(thread=False)
    for _ in range(300):
        clock.advance(1)
        values["rss"] += 1000
        first.sample_now()
    assert first.last_flush is not None and first.flush_errors == 0
    first.stop()
    from memlens.store import open_store

    stored = open_store(db).load("monitor-api")
    assert stored.kind == "monitor" and stored.status == "completed"
    assert stored.series.count == 301

    clock.advance(600)  # ten minutes of downtime
    second = Monitor(cfg, clock=clock, readers=[lambda: dict(values)]).start(thread=False)
    assert second.series.count == 302  # restored, plus the first sample of this run
    times = second.series.times()
    assert times[0] == 0.0 and times[-1] == pytest.approx(900.0)
    for _ in range(60):
        clock.advance(1)
        second.sample_now()
    # The last 12 minutes (t >= 240) span the restart: 61 old samples and 61 new ones.
    trends = second.get_memory_trends(window_minutes=12)
    assert trends["samples"] == 122
    second.stop()
    assert open_store(db).load("monitor-api").series.count == 362


def test_config_errors_fail_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mode.*accepted values are off, basic"):
        Monitor.from_config(tmp_path, env={}, mode="fast")
    with pytest.raises(ConfigError, match="threshold_hysteresis"):
        Monitor.from_config(tmp_path, env={"MEMLENS_THRESHOLD_HYSTERESIS": "0.9"})
    with pytest.raises(ConfigError, match="leak_warmup_seconds"):
        Monitor.from_config(tmp_path, env={}, leak_warmup_seconds=-1)
    (tmp_path / "memlens.toml").write_text("event_queue_size = 0\n")
    with pytest.raises(ConfigError, match="event_queue_size"):
        Monitor.from_config(tmp_path, env={})


def test_autostart_does_nothing_without_the_variable() -> None:
    assert autostart(env={}) is None


def test_autostart_with_bad_config_reports_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert autostart(env={"MEMLENS_MONITOR": "1", "MEMLENS_MODE": "bogus"}) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "monitor not started" in err[0] and "mode" in err[0]


def test_memlens_monitor_env_autostarts_an_unmodified_program(tmp_path: Path) -> None:
    from memlens.service import bootstrap

    program = tmp_path / "app.py"
    program.write_text(
        "import threading, time\n"
        "time.sleep(0.5)\n"
        "print(sorted(t.name for t in threading.enumerate()))\n"
    )
    db = tmp_path / "m.db"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([bootstrap.PATH, os.environ.get("PYTHONPATH", "")]),
        MEMLENS_MONITOR="1",
        MEMLENS_DB=str(db),
        MEMLENS_SERVICE_NAME="autoapp",
        MEMLENS_SAMPLING_INTERVAL="50ms",
        MEMLENS_MODE="production",
    )
    out = subprocess.run(
        [sys.executable, str(program)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "memlens-monitor" in out.stdout and "memlens-events" in out.stdout
    from memlens.store import open_store

    session = open_store(db).load("monitor-autoapp")
    assert session.kind == "monitor" and session.series.count >= 3
    # Without the variable the same program runs unmonitored.
    del env["MEMLENS_MONITOR"]
    plain = subprocess.run(
        [sys.executable, str(program)], env=env, capture_output=True, text=True, timeout=60
    )
    assert "memlens-monitor" not in plain.stdout
