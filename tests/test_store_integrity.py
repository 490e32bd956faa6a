"""The store under damage and contention: corrupted files, flipped bytes, two writers."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from memlens.core.errors import StoreError
from memlens.store import SqliteStore, open_store
from tests.sample_sessions import make_session


def test_garbage_file_is_a_one_line_error_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    garbage = b"this is not a database at all\n" * 200
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match="not an SQLite database") as info:
        open_store(path)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.db"]


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory"):
        open_store(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    SqliteStore(path).close()
    path.chmod(0)
    try:
        with pytest.raises(StoreError, match="permission"):
            open_store(path)
    finally:
        path.chmod(0o644)


def _flip_byte_inside_blob(path: Path, session_id: str) -> None:
    """Flip one byte of a session's stored blob in the database file itself."""
    conn = sqlite3.connect(path)
    blob = bytes(
        conn.execute("SELECT body FROM sessions WHERE id = ?", (session_id,)).fetchone()[0]
    )
    conn.close()
    data = bytearray(path.read_bytes())
    # A window of the blob that occurs exactly once in the file (compressed sessions
    # that look alike can share a short run of bytes).
    for start in range(len(blob) // 2, len(blob) - 24):
        needle = blob[start : start + 24]
        offset = data.find(needle)
        if offset > 0 and data.find(needle, offset + 1) == -1:
            break
    else:
        raise AssertionError("blob not found once in the file")
    data[offset + 5] ^= 0x20
    path.write_bytes(bytes(data))


def test_flipped_byte_spoils_only_its_own_session(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    healthy = [make_session(f"ok{i}") for i in range(3)]
    victim = make_session("victim", samples=10)
    with SqliteStore(path) as store:
        for s in [healthy[0], victim, *healthy[1:]]:
            store.save(s)
    # Closing the last connection checkpoints the WAL into the main file.
    assert not Path(str(path) + "-wal").exists()
    _flip_byte_inside_blob(path, victim.id)

    with SqliteStore(path) as store:
        rows = {r.id: r for r in store.list()}
        assert len(rows) == 4
        assert rows[victim.id].corrupted
        assert not any(rows[s.id].corrupted for s in healthy)
        for s in healthy:
            assert store.load(s.id) == s
        with pytest.raises(StoreError, match="corrupted") as info:
            store.load(victim.id)
        assert victim.id in str(info.value)
        # The series blob of the victim is intact, so its samples still export.
        assert store.samples(victim.id) == victim.series
        # Nothing was deleted or rewritten behind the user's back.
        assert len(store.list(verify=False)) == 4


def test_damaged_table_page_still_lists_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    sessions = [make_session(f"s{i}", samples=400) for i in range(12)]
    with SqliteStore(path) as store:
        for s in sessions:
            store.save(s)
    victim = sessions[6]
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    body = bytes(conn.execute("SELECT body FROM sessions WHERE id = ?", (victim.id,)).fetchone()[0])
    conn.close()
    # Zero the whole table page that holds the victim's row (SQLite checks no
    # checksums, so this is what disk damage looks like to it).
    data = bytearray(path.read_bytes())
    tail = body[-32:]  # ends with zlib's checksum, so unique in the file
    assert data.count(tail) == 1
    page = data.find(tail) // page_size
    assert page > 1
    data[page * page_size : (page + 1) * page_size] = bytes(page_size)
    path.write_bytes(bytes(data))

    with SqliteStore(path) as store:
        rows = store.list()
        listed = {r.id for r in rows}
        assert victim.id not in listed or next(r for r in rows if r.id == victim.id).corrupted
        readable = []
        for row in rows:
            try:
                readable.append(store.load(row.id))
            except StoreError as exc:
                assert "\n" not in str(exc)
        assert readable, "no healthy session could be read"
        assert all(s in sessions for s in readable)
        with pytest.raises(StoreError):
            store.load(victim.id)


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from memlens.store import open_store
    from tests.sample_sessions import make_session

    db, go, tag, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    store = open_store(db)
    while not go.exists():
        time.sleep(0.001)
    for i in range(count):
        store.save(make_session(f"{tag}-{i}", samples=50))
    store.close()
    """
)


def test_two_processes_saving_at_once_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    go = tmp_path / "go"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    root = Path(__file__).resolve().parents[1]
    # src/ first: the writers must import this tree, whatever memlens is installed.
    paths = [str(root / "src"), str(root), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    count = 40
    procs = [
        subprocess.Popen([sys.executable, str(script), str(db), str(go), tag, str(count)], env=env)
        for tag in ("a", "b", "c")
    ]
    time.sleep(0.3)  # let every writer open the store before the race starts
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    with SqliteStore(db) as store:
        rows = store.list()
        names = sorted(r.name for r in rows)
        assert names == sorted(f"{t}-{i}" for t in "abc" for i in range(count))
        assert not any(r.corrupted for r in rows)
        assert store.load(rows[0].id).name == rows[0].name
