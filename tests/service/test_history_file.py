"""The monitor's history file (issue #15): written by the watched process without the
store, brought into the store by every command that opens it, continued after a
restart, safe with two processes of one service, and never destroying what was
stored when a file is damaged. Real monitors in real subprocesses, real ``memlens``."""

from __future__ import annotations

import json
import marshal
import math
import os
import random
import subprocess
import sys
import textwrap
import time
import zlib
from array import array
from pathlib import Path
from typing import Any

import pytest

from memlens.core import history_file
from memlens.core.config import Config
from memlens.core.digest import sha256_hex
from memlens.core.findings import Diagnosis, Finding
from memlens.core.series import Series, TierSpec
from memlens.service import Monitor, history
from memlens.service.growth import diagnosis_dict
from memlens.store import open_store
from tests.memlens_cli import memlens
from tests.service.helpers import MB, Workload, make_monitor, run_for

SERVICE = textwrap.dedent(
    """
    import sys, time
    import memlens
    name, flush_every, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    m = memlens.Monitor(memlens.load_config(None, mode="production", service_name=name,
        sampling_interval=0.05, history_flush_interval=flush_every)).start()
    time.sleep(seconds)
    m.stop()
    loaded = [k for k in sys.modules if k in ("sqlite3", "dataclasses", "json")
              or k.startswith("memlens.store")]
    import json
    assert m.stats()["last_flush_error"] == m.last_flush_error
    print(json.dumps({"samples": m.samples, "flush_errors": m.flush_errors,
        "count": m.series.count, "last_error": m.last_flush_error or "", "loaded": loaded}))
    """
)


def _service(
    tmp_path: Path, name: str = "web", flush: float = 0.1, seconds: float = 0.6
) -> dict[str, Any]:
    """Run a monitored program in ``tmp_path`` (the default store: ./.memlens/memlens.db)."""
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    return _result(_start(tmp_path, name, flush, seconds))


def _start(tmp_path: Path, name: str, flush: float, seconds: float) -> subprocess.Popen[str]:
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMLENS_")}
    return subprocess.Popen(
        [sys.executable, str(script), name, str(flush), str(seconds)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _db(tmp_path: Path) -> Path:
    return tmp_path / ".memlens" / "memlens.db"


def _file(tmp_path: Path, name: str = "web") -> Path:
    return Path(history_file.path_for(str(_db(tmp_path)), f"monitor-{name}"))


def _rows(tmp_path: Path) -> tuple[list[dict], str]:
    listed = memlens("sessions", "--json", db=_db(tmp_path))
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout), listed.stderr


def test_history_written_by_a_monitor_is_listed_and_shown(tmp_path: Path) -> None:
    run = _service(tmp_path)
    assert run["flush_errors"] == 0 and run["loaded"] == [], run
    assert _file(tmp_path).is_file() and not _db(tmp_path).exists()
    rows, err = _rows(tmp_path)
    assert err == ""
    (row,) = rows
    assert (row["id"], row["kind"], row["status"]) == ("monitor-web", "monitor", "completed")
    shown = memlens("show", "monitor-web", db=_db(tmp_path))
    assert shown.returncode == 0, shown.stderr
    assert "monitor-web" in shown.stdout and "completed" in shown.stdout
    stored = open_store(_db(tmp_path)).load("monitor-web")
    assert stored.series.count == run["count"] >= 3
    assert stored.analyses["diagnosis"]["verdict"] == "no leak"


def test_a_restarted_monitor_continues_its_history(tmp_path: Path) -> None:
    first = _service(tmp_path, seconds=0.5)
    memlens("sessions", db=_db(tmp_path))  # brought in once between the runs
    time.sleep(0.3)
    second = _service(tmp_path, seconds=0.5)
    assert second["flush_errors"] == 0, second
    # The restored series plus this run's samples.
    assert second["count"] == first["count"] + second["samples"]
    rows, _ = _rows(tmp_path)
    assert [r["id"] for r in rows] == ["monitor-web"]  # continued: nothing set aside
    stored = open_store(_db(tmp_path)).load("monitor-web")
    assert stored.series.count == second["count"]
    times = stored.series.times()
    assert times[0] < 0.25 and times[-1] >= 0.5 + 0.3 + 0.5  # one axis across both runs
    assert stored.duration >= 0.5 + 0.3 + 0.5


def test_a_corrupted_history_file_is_reported_and_what_was_stored_is_kept(
    tmp_path: Path,
) -> None:
    first = _service(tmp_path)
    _rows(tmp_path)  # brought in
    path = _file(tmp_path)
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0x40  # one flipped bit in the payload
    path.write_bytes(bytes(blob))
    rows, err = _rows(tmp_path)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "corrupted (checksum mismatch)" in lines[0], err
    assert "kept" in lines[0] and "Traceback" not in err
    assert [r["id"] for r in rows] == ["monitor-web"]
    assert open_store(_db(tmp_path)).load("monitor-web").series.count == first["count"]
    # A file cut short is reported the same way.
    path.write_bytes(bytes(blob[: len(blob) // 2]))
    _, err = _rows(tmp_path)
    assert len(err.strip().splitlines()) == 1 and "history file" in err, err

    # The restarted monitor cannot continue it: it starts afresh, says why, and keeps
    # the damaged file aside; the stored history is kept under its start time.
    again = _service(tmp_path)
    assert "corrupted" in again["last_error"] and again["count"] == again["samples"], again
    assert Path(str(path) + ".corrupt").is_file()
    rows, err = _rows(tmp_path)
    assert err == ""
    ids = sorted(r["id"] for r in rows)
    assert ids[0] == "monitor-web" and ids[1].startswith("monitor-web@") and len(ids) == 2
    store = open_store(_db(tmp_path))
    assert store.load(ids[1]).series.count == first["count"]
    assert store.load("monitor-web").series.count == again["count"]


def test_two_processes_with_the_same_service_name(tmp_path: Path) -> None:
    procs = [_start(tmp_path, "web", 0.02, 1.5) for _ in range(2)]
    path = _file(tmp_path)
    reads = 0
    # Read for as long as either writer runs (not a fixed window: on a loaded machine
    # the two may take longer than their run time just to start), and at least once.
    deadline = time.monotonic() + 120
    while (reads == 0 or any(p.poll() is None for p in procs)) and time.monotonic() < deadline:
        try:  # a reader never sees a torn file
            data, _ = history_file.read(str(path))
        except FileNotFoundError:
            continue
        assert data["id"] == "monitor-web"
        reads += 1
    runs = [_result(p) for p in procs]
    assert reads > 0
    assert all(r["flush_errors"] == 0 for r in runs), runs
    leftovers = [n for n in os.listdir(path.parent) if n.endswith(".tmp")]
    assert leftovers == []
    rows, err = _rows(tmp_path)
    assert err == "" and "monitor-web" in [r["id"] for r in rows]
    store = open_store(_db(tmp_path))
    kept = store.load("monitor-web")
    assert kept.series.count in {r["count"] for r in runs}  # one whole history, the last one
    for row in rows:
        assert not row["corrupted"] and store.load(row["id"]).kind == "monitor"


def test_rm_removes_the_history_file_so_the_session_stays_deleted(tmp_path: Path) -> None:
    _service(tmp_path)
    _rows(tmp_path)
    removed = memlens("rm", "monitor-web", db=_db(tmp_path))
    assert removed.returncode == 0, removed.stderr
    assert not _file(tmp_path).exists()
    rows, _ = _rows(tmp_path)
    assert rows == []


def test_the_file_is_where_the_store_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEMLENS_DB", str(tmp_path / "env.db"))
    mon = Monitor(Config(service_name="a b/c", persist_history=True))
    assert history.destination(mon) == str(tmp_path / "env.db.history" / "monitor-a%20b%2Fc.mlh")
    monkeypatch.delenv("MEMLENS_DB")
    mon = Monitor(Config(service_name="svc", db_path="sqlite:///rel.db"))
    assert history.destination(mon) == str(tmp_path / "rel.db.history" / "monitor-svc.mlh")
    # A Redis store, or a store handed to the monitor, is written through the store.
    assert history.destination(Monitor(Config(db_path="redis://localhost:1/0"))) is None
    given = open_store(tmp_path / "given.db")
    mon = Monitor(Config(service_name="svc", history_flush_interval=60), store=given)
    mon.start(thread=False)
    mon.stop()
    assert history.destination(mon) is None and given.load("monitor-svc").kind == "monitor"
    assert not (tmp_path / "given.db.history").exists()


def test_the_saved_diagnosis_is_the_findings_model(tmp_path: Path) -> None:
    work = Workload(lambda t: 300 * MB + t / 60 * MB)
    mon = make_monitor(work).start(thread=False)
    try:
        assert run_for(mon, work, 20 * 60)
        (alert,) = mon.leaks.active()
        assert alert.finding_dict() == alert.to_finding().to_dict()
        assert Finding.from_dict(alert.finding_dict()).to_dict() == alert.finding_dict()
        saved = diagnosis_dict(mon)
        assert saved == mon.diagnosis().to_dict() == Diagnosis.from_dict(saved).to_dict()
        assert saved["verdict"] == "leak"
    finally:
        mon.stop()


def test_a_file_that_is_not_a_history_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.mlh"
    digest = history_file.write(str(path), {"id": "monitor-x", "n": [1, 2.5, None, True]})
    assert history_file.read_digest(str(path)) == digest
    assert history_file.read(str(path)) == ({"id": "monitor-x", "n": [1, 2.5, None, True]}, digest)
    path.write_bytes(b"SQLite format 3\x00")
    with pytest.raises(history_file.HistoryFileError, match="not a memlens history file"):
        history_file.read(str(path))
    path.write_bytes(b"memlens-history 9\n" + b"0" * 64 + b"\n")
    with pytest.raises(history_file.HistoryFileError, match="newer memlens"):
        history_file.read(str(path))
    # A well-checksummed file holding more than plain data (a code object) is refused
    # before anything is made of it.
    payload = zlib.compress(marshal.dumps({"id": "x", "f": compile("1", "f", "eval")}))
    path.write_bytes(history_file.MAGIC + sha256_hex(payload).encode() + b"\n" + payload)
    with pytest.raises(history_file.HistoryFileError, match="does not hold a session"):
        history_file.read(str(path))


@pytest.mark.parametrize("samples", [0, 5, 400, 3000])
def test_a_packed_series_is_the_same_series(samples: int) -> None:
    # Rings partly filled and wrapped (raw 100 rows; 1-minute windows of 10 s samples),
    # a field that appears later (NaN before it), and the windows still open.
    series = Series(raw_capacity=100, tiers=(TierSpec(60.0, 3600.0), TierSpec(600.0, 86400.0)))
    for i in range(samples):
        values = {"rss": 1e8 + i * 4096.5}
        if i > samples // 2:
            values["gc_collected"] = float(i % 7)
        series.append(i * 10.0, values)
    data = {"series": history_file.pack_series(series)}
    blob, _ = history_file.encode(data)
    read, _ = history_file.decode(blob, "test")
    again = history_file.series_of(read)
    assert again == series and again.count == series.count
    assert history_file.session_dict(read)["series"] == series.to_dict()
    again.append(samples * 10.0, {"rss": 1.0})  # and it goes on as the original would
    series.append(samples * 10.0, {"rss": 1.0})
    assert again == series


def test_a_packed_series_from_the_other_byte_order_and_a_damaged_one() -> None:
    series = Series(raw_capacity=10)
    for i in range(25):
        series.append(float(i), {"rss": float(i * 1000)})
    packed = history_file.pack_series(series)
    swapped = dict(packed, byteorder="big" if sys.byteorder == "little" else "little")
    flipped = []
    for raw in packed["raw"]["columns"]:
        col = array("d")
        col.frombytes(raw)
        col.byteswap()
        flipped.append(col.tobytes())
    swapped["raw"] = {"size": packed["raw"]["size"], "columns": flipped}
    swapped["aggregates"] = []  # and no tiers
    swapped["open"] = []
    swapped["tiers"] = []
    assert history_file.series_of({"series": swapped}).times() == series.times()
    short = dict(packed, raw={"size": 10, "columns": [b"\0" * 8, b"\0" * 16]})
    with pytest.raises(history_file.HistoryFileError, match="damaged series"):
        history_file.series_of({"series": short})


@pytest.mark.parametrize("samples", [1, 50, 400, 3000, 20000])
def test_the_saved_summary_reads_the_same_points_without_building_them(samples: int) -> None:
    # Series.first_and_highest, which the flush uses, against Series.points.
    series = Series(raw_capacity=100, tiers=(TierSpec(60.0, 3600.0), TierSpec(600.0, 86400.0)))
    rng = random.Random(samples)
    for i in range(samples):
        value = float("nan") if i % 97 == 5 else 1e8 + rng.random() * 1e7
        series.append(i * 10.0, {"vms": 1.0} if i == 0 else {"rss": value, "vms": 1.0})
    found = series.first_and_highest("rss")
    if "rss" not in series.fields:  # one sample, without it
        assert found is None
        return
    points = series.points("rss")
    assert found is not None
    assert found[0] == points[0]
    assert found[1] == max(p.max for p in points if math.isfinite(p.max))
    assert series.first_and_highest("uss") is None
    assert Series().first_and_highest("rss") is None


def test_a_temporary_file_left_by_a_dead_writer_is_cleared(tmp_path: Path) -> None:
    _service(tmp_path)
    folder = _file(tmp_path).parent
    stale = folder / ".monitor-web.mlh.999999.tmp"
    fresh = folder / ".monitor-web.mlh.999998.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"memlens-history 1\n")  # what a writer killed mid-write leaves
    old = time.time() - 3600
    os.utime(stale, (old, old))
    rows, err = _rows(tmp_path)
    assert err == "" and [r["id"] for r in rows] == ["monitor-web"]
    assert not stale.exists() and fresh.exists()  # a write may still be under way
