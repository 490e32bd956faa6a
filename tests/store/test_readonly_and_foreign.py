"""Reading never changes the ``--db`` file; foreign, empty and read-only files are handled.

Each case runs the real CLI in a subprocess. As root, permission bits do not bind,
so read-only cases run the CLI without ``CAP_DAC_OVERRIDE`` (``setpriv``), which
makes the kernel enforce them as for any user.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from memlens.store import SqliteStore
from tests.memlens_cli import cli_env, memlens, one_line_error
from tests.sample_sessions import make_session

READ_COMMANDS = (
    ["sessions"],
    ["sessions", "--json"],
    ["show", "latest"],
    ["report", "latest", "--format", "json"],
    ["export", "latest"],
)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _app_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada'), ('lin')")
    conn.commit()
    conn.close()


def test_an_applications_database_is_refused_and_left_byte_identical(tmp_path: Path) -> None:
    db = tmp_path / "app.sqlite"
    _app_database(db)
    before = _digest(db)
    for args in [*READ_COMMANDS, ["rm", "latest"], ["rm", "--all", "--yes"]]:
        run = memlens(*args, db=db)
        assert run.returncode != 0, args
        assert "not a memlens store" in one_line_error(run.stderr), args
    script = tmp_path / "job.py"
    script.write_text("print('ran')\n")
    run = memlens("run", "--no-html", str(script), db=db)
    assert "not a memlens store" in one_line_error(run.stderr)
    assert "ran" not in run.stdout  # refused before the program ran
    assert _digest(db) == before
    assert _files(tmp_path) == ["app.sqlite", "job.py"]  # no -wal/-shm left, no journal
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT name FROM users ORDER BY id").fetchall() == [("ada",), ("lin",)]


def test_a_zero_byte_file_stays_zero_bytes(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    script = tmp_path / "job.py"
    script.write_text("print('ran')\n")
    for args in [*READ_COMMANDS, ["rm", "latest"], ["run", "--no-html", str(script)]]:
        run = memlens(*args, db=db)
        assert run.returncode != 0, args
        assert "empty file (0 bytes)" in one_line_error(run.stderr), args
    assert db.stat().st_size == 0
    assert _files(tmp_path) == ["empty.db", "job.py"]


def test_reading_a_memlens_store_does_not_change_it(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with SqliteStore(db) as store:
        store.save(make_session("alpha"))
    before = _digest(db)
    for args in READ_COMMANDS:
        run = memlens(*args, db=db)
        assert run.returncode == 0, (args, run.stderr)
    assert _digest(db) == before
    # A WAL reader may leave SQLite's own -wal/-shm companions; nothing else appears.
    assert set(_files(tmp_path)) <= {"m.db", "m.db-wal", "m.db-shm"}


def _unprivileged() -> list[str]:
    """A command prefix under which permission bits bind (drops DAC override as root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permission bits cannot be enforced")
    drop = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={drop}", f"--bounding-set={drop}"]


def _memlens_unprivileged(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_unprivileged(), sys.executable, "-m", "memlens", *args],
        cwd=db.parent.parent,
        env=cli_env(db),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_read_only_directory_lists_and_refuses_writes_before_running(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    db = store_dir / "m.db"
    session = make_session("alpha")
    with SqliteStore(db) as store:
        store.save(session)
    script = tmp_path / "job.py"
    marker = tmp_path / "ran"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    store_dir.chmod(0o555)
    try:
        listed = _memlens_unprivileged("sessions", "--json", db=db)
        assert listed.returncode == 0, listed.stderr
        assert [r["id"] for r in json.loads(listed.stdout)] == [session.id]
        shown = _memlens_unprivileged("show", session.id, db=db)
        assert shown.returncode == 0, shown.stderr
        for args in (["run", "--no-html", str(script)], ["rm", session.id]):
            run = _memlens_unprivileged(*args, db=db)
            assert "is read-only" in one_line_error(run.stderr), args
            assert run.returncode != 0
        assert not marker.exists()
    finally:
        store_dir.chmod(0o755)
    assert _files(store_dir) == ["m.db"]


def test_read_only_file_is_refused_before_the_program_runs(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    db = store_dir / "m.db"
    with SqliteStore(db) as store:
        store.save(make_session("alpha"))
    before = _digest(db)
    script = tmp_path / "job.py"
    marker = tmp_path / "ran"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    db.chmod(0o444)
    try:
        run = _memlens_unprivileged("run", "--no-html", str(script), db=db)
        assert "read-only" in one_line_error(run.stderr)
        assert run.returncode != 0
        assert not marker.exists()
        listed = _memlens_unprivileged("sessions", "--json", db=db)
        assert listed.returncode == 0, listed.stderr
    finally:
        db.chmod(0o644)
    assert _digest(db) == before
