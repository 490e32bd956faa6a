"""``memlens sessions/show/report/export/rm`` in real subprocesses."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from memlens.core.session import Session
from memlens.store import SqliteStore
from tests.memlens_cli import memlens, one_line_error
from tests.sample_sessions import make_session


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, list[Session]]:
    db = tmp_path / "m.db"
    sessions = [
        make_session("alpha", session_id="20240101-000000-aaaa0001"),
        make_session("beta", session_id="20240102-000000-bbbb0002", status="failed"),
        make_session("gamma", session_id="20240103-000000-cccc0003", kind="doctor"),
    ]
    for i, s in enumerate(sessions):
        s.metadata.started_at = f"2024-01-0{i + 1}T00:00:00+00:00"
    with SqliteStore(db) as store:
        for s in sessions:
            store.save(s)
    return db, sessions


def test_sessions_table_and_json(stored: tuple[Path, list[Session]]) -> None:
    db, sessions = stored
    run = memlens("sessions", db=db)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "name", "kind", "status"]
    assert [line.split()[0] for line in lines[1:]] == [s.id for s in reversed(sessions)]
    rows = json.loads(memlens("sessions", "--json", db=db).stdout)
    assert [r["name"] for r in rows] == ["gamma", "beta", "alpha"]
    assert rows[2]["peak_rss"] == sessions[0].peak_rss and rows[2]["corrupted"] is False
    only = json.loads(memlens("sessions", "--json", "--kind", "doctor", db=db).stdout)
    assert [r["name"] for r in only] == ["gamma"]


def test_sessions_without_a_store_is_not_an_error(tmp_path: Path) -> None:
    db = tmp_path / "none" / "m.db"
    run = memlens("sessions", db=db, cwd=tmp_path)
    assert run.returncode == 0
    assert "No sessions yet" in run.stdout
    assert not db.parent.exists()
    assert memlens("sessions", "--json", db=db, cwd=tmp_path).stdout.strip() == "[]"


def test_show_by_prefix_and_latest(stored: tuple[Path, list[Session]]) -> None:
    db, sessions = stored
    run = memlens("show", "20240101", db=db)
    assert run.returncode == 0, run.stderr
    assert "alpha" in run.stdout and "Peak RSS" in run.stdout and "allocation sites" in run.stdout
    assert "gamma" in memlens("show", "latest", db=db).stdout


def test_unknown_and_ambiguous_ids(stored: tuple[Path, list[Session]]) -> None:
    db, _ = stored
    for command in (["show"], ["report"], ["export"], ["rm"]):
        run = memlens(*command, "nope", db=db)
        assert run.returncode != 0
        assert "no session 'nope'" in one_line_error(run.stderr)
    run = memlens("show", "2024", db=db)
    assert "ambiguous" in one_line_error(run.stderr)


def test_report_formats(stored: tuple[Path, list[Session]], tmp_path: Path) -> None:
    db, sessions = stored
    text = memlens("report", "aaaa0001", db=db)
    assert text.returncode == 0 and "alpha" in text.stdout and "RSS over time" in text.stdout
    as_json = memlens("report", "aaaa0001", "--format", "json", db=db)
    assert Session.from_json(as_json.stdout) == sessions[0]
    html = memlens("report", "aaaa0001", "-f", "html", db=db)
    assert html.returncode == 0
    default = tmp_path / f"memlens-report-{sessions[0].id}.html"
    assert default.is_file() and "<svg" not in default.read_text()  # drawn by JS
    out = memlens("report", "aaaa0001", "-f", "html", "-o", "r/x.html", db=db)
    assert out.returncode != 0 and "cannot write" in one_line_error(out.stderr)
    (tmp_path / "r").mkdir()
    assert memlens("report", "aaaa0001", "-f", "html", "-o", "r/x.html", db=db).returncode == 0
    assert sessions[0].id in (tmp_path / "r" / "x.html").read_text()


def test_export_csv_and_jsonl(stored: tuple[Path, list[Session]], tmp_path: Path) -> None:
    db, sessions = stored
    series = sessions[0].series
    run = memlens("export", "aaaa0001", db=db)
    assert run.returncode == 0, run.stderr
    rows = list(csv.reader(io.StringIO(run.stdout)))
    assert rows[0] == ["t", *series.fields]
    assert len(rows) - 1 == len(series)
    rss_col = rows[0].index("rss")
    assert [int(r[rss_col]) for r in rows[1:]] == [int(v) for v in series.column("rss")]
    jsonl = memlens("export", "aaaa0001", "--format", "jsonl", "-o", "s.jsonl", db=db)
    assert jsonl.returncode == 0
    records = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert len(records) == len(series)
    assert records[-1]["rss"] == int(series.column("rss")[-1])
    assert records[0]["t"] == 0


def test_rm_checks_every_id_first(stored: tuple[Path, list[Session]]) -> None:
    db, sessions = stored
    run = memlens("rm", sessions[0].id, "nope", db=db)
    assert run.returncode != 0
    assert len(json.loads(memlens("sessions", "--json", db=db).stdout)) == 3
    # A suffix or prefix is never enough to delete: it could name another session.
    run = memlens("rm", "aaaa0001", db=db)
    assert "needs a full session id" in one_line_error(run.stderr)
    assert len(json.loads(memlens("sessions", "--json", db=db).stdout)) == 3
    run = memlens("rm", sessions[0].id, sessions[1].id, db=db)
    assert run.returncode == 0, run.stderr
    assert "Deleted 2 sessions" in run.stdout
    remaining = json.loads(memlens("sessions", "--json", db=db).stdout)
    assert [r["id"] for r in remaining] == [sessions[2].id]


def test_rm_all_needs_yes_when_not_interactive(stored: tuple[Path, list[Session]]) -> None:
    db, _ = stored
    run = memlens("rm", "--all", db=db)
    assert "without --yes" in one_line_error(run.stderr)
    assert len(json.loads(memlens("sessions", "--json", db=db).stdout)) == 3
    assert memlens("rm", "--all", "--yes", db=db).returncode == 0
    assert json.loads(memlens("sessions", "--json", db=db).stdout) == []


def test_corrupted_blob_does_not_hide_healthy_sessions(stored: tuple[Path, list[Session]]) -> None:
    db, sessions = stored
    conn = sqlite3.connect(db)
    blob = bytearray(
        conn.execute("SELECT body FROM sessions WHERE id = ?", (sessions[1].id,)).fetchone()[0]
    )
    blob[len(blob) // 2] ^= 0xFF
    conn.execute("UPDATE sessions SET body = ? WHERE id = ?", (bytes(blob), sessions[1].id))
    conn.commit()
    conn.close()
    listing = memlens("sessions", db=db)
    assert listing.returncode == 0
    beta = next(line for line in listing.stdout.splitlines() if "beta" in line)
    assert "CORRUPTED" in beta
    assert "CORRUPTED" not in listing.stdout.replace(beta, "")
    broken = memlens("show", "bbbb0002", db=db)
    assert broken.returncode != 0 and "corrupted" in one_line_error(broken.stderr)
    assert memlens("show", "aaaa0001", db=db).returncode == 0
    assert memlens("export", "bbbb0002", db=db).returncode == 0  # samples are a separate blob


def test_garbage_database_is_one_line_everywhere(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    db.write_text("hello, I am not SQLite\n" * 50)
    for args in (["sessions"], ["show", "x"], ["rm", "--all", "--yes"]):
        run = memlens(*args, db=db)
        assert run.returncode != 0
        assert "not an SQLite database" in one_line_error(run.stderr)
    assert db.read_text() == "hello, I am not SQLite\n" * 50


def test_db_option_overrides_environment(
    stored: tuple[Path, list[Session]], tmp_path: Path
) -> None:
    db, _ = stored
    other = tmp_path / "other.db"
    SqliteStore(other).close()
    run = memlens("sessions", "--json", "--db", str(other), db=db)
    assert json.loads(run.stdout) == []


def test_rm_latest_means_the_newest_never_a_suffix_match(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    older = make_session("web", session_id="monitor-web-latest")
    older.metadata.started_at = "2024-01-01T00:00:00+00:00"
    newest = make_session("job", session_id="20240105-000000-dddd0004")
    newest.metadata.started_at = "2024-01-05T00:00:00+00:00"
    with SqliteStore(db) as store:
        store.save(older)
        store.save(newest)
    run = memlens("rm", "latest", db=db)
    assert run.returncode == 0, run.stderr
    assert newest.id in run.stdout
    remaining = json.loads(memlens("sessions", "--json", db=db).stdout)
    assert [r["id"] for r in remaining] == ["monitor-web-latest"]
