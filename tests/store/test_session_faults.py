"""The session store under faults: kill -9 during saves, 8 concurrent writers, damaged files.

Each test prints its figures (``FIGURE …`` lines, shown with ``pytest -s``); the
user guide quotes them with the command:

    python -m pytest -q -s tests/store/test_session_faults.py | grep FIGURE
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import time
from pathlib import Path

import pytest

from memlens.core.errors import StoreError
from memlens.store import SqliteStore
from tests.memlens_cli import memlens, one_line_error
from tests.sample_sessions import make_session

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _child_saves(db: Path, prefix: str, count: int, ack_fd: int, start_fd: int | None) -> None:
    """In a forked child: save sessions, writing each id to ``ack_fd`` once saved."""
    code = 0
    try:
        if start_fd is not None:
            os.read(start_fd, 1)  # wait for the starting gun
        store = SqliteStore(db)
        for n in range(count):
            session = make_session(f"{prefix}-{n}", samples=200, session_id=f"{prefix}-{n:04d}")
            store.save(session)
            os.write(ack_fd, f"{session.id}\n".encode())
        store.close()
    except BaseException as exc:  # noqa: BLE001 - report, the parent counts it
        os.write(ack_fd, f"ERROR {type(exc).__name__}: {exc}\n".encode())
        code = 1
    finally:
        os._exit(code)


def test_kill_9_at_random_moments_during_saves_keeps_every_earlier_session(
    tmp_path: Path,
) -> None:
    db = tmp_path / "m.db"
    SqliteStore(db).close()
    rng = random.Random(2024)
    acknowledged: list[str] = []
    tried = survived = 0
    for round_no in range(60):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child_saves(db, f"kill{round_no:02d}", 1000, write_fd, None)
        os.close(write_fd)
        # Let it save a few, then kill it at a random moment inside a later save.
        wanted, seen, buffer = rng.randint(1, 4), 0, b""
        while seen < wanted:
            chunk = os.read(read_fd, 4096)
            if not chunk:
                break
            buffer += chunk
            seen = buffer.count(b"\n")
        time.sleep(rng.random() * 0.03)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        while chunk := os.read(read_fd, 4096):
            buffer += chunk
        os.close(read_fd)
        acknowledged += [line for line in buffer.decode().splitlines() if line]
        assert not any(line.startswith("ERROR") for line in acknowledged)
        tried += 1
        with SqliteStore(db, readonly=True) as store:
            rows = {row.id: row for row in store.list()}
            missing = [sid for sid in acknowledged if sid not in rows]
            corrupted = [row.id for row in rows.values() if row.corrupted]
            assert missing == [] and corrupted == []
            store.load(acknowledged[-1])  # the newest acknowledged one reads back whole
        survived += 1
    lost = len(acknowledged) - len(set(acknowledged) & set(rows))
    print(
        f"FIGURE kill -9 during saves: tried {tried}, store intact {survived}, "
        f"acknowledged sessions {len(acknowledged)}, lost {lost}"
    )
    assert (tried, survived, lost) == (60, 60, 0)


def test_8_processes_x_50_concurrent_saves_all_arrive(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    SqliteStore(db).close()
    workers, each = 8, 50
    start_read, start_write = os.pipe()
    children = []
    for w in range(workers):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child_saves(db, f"w{w}", each, write_fd, start_read)
        os.close(write_fd)
        children.append((pid, read_fd))
    os.write(start_write, b"x" * workers)  # all start at once
    lines: list[str] = []
    failures = 0
    for pid, read_fd in children:
        buffer = b""
        while chunk := os.read(read_fd, 65536):
            buffer += chunk
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
        failures += os.waitstatus_to_exitcode(status) != 0
        lines += buffer.decode().splitlines()
    errors = [line for line in lines if line.startswith("ERROR")]
    with SqliteStore(db, readonly=True) as store:
        rows = store.list()
    print(
        f"FIGURE concurrent saves: {workers} processes x {each} = {workers * each} tried, "
        f"{len(rows)} stored, {len(errors)} errors ({sum('locked' in e for e in errors)} "
        f"'database is locked'), lost {workers * each - len(rows)}"
    )
    assert errors == [] and failures == 0
    assert len(rows) == workers * each and not any(r.corrupted for r in rows)


def _stored(tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "m.db"
    with SqliteStore(db) as store:
        for i in range(30):
            last = store.save(make_session(f"s{i}", samples=300))
    return db, last


COMMANDS = (
    ["sessions"],
    ["sessions", "--json"],
    ["show", "latest"],
    ["report", "latest", "--format", "json"],
    ["export", "latest"],
    ["rm", "latest"],
    ["memory", "check"],
    ["run", "--no-html", "job.py"],
)


@pytest.mark.parametrize("damage", ["garbage header", "truncated to half", "truncated to 4 KiB"])
def test_a_damaged_file_is_one_line_from_every_command_and_stays_as_it_was(
    tmp_path: Path, damage: str
) -> None:
    db, _ = _stored(tmp_path)
    data = db.read_bytes()
    if damage == "garbage header":
        data = b"\x00garbage!" * 8 + data[72:]
    elif damage == "truncated to half":
        data = data[: len(data) // 2]
    else:
        data = data[:4096]
    db.write_bytes(data)
    for name in ("m.db-wal", "m.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    (tmp_path / "job.py").write_text("open('ran', 'w').close()\n")
    digest = hashlib.sha256(data).hexdigest()
    failed_cleanly = 0
    for args in COMMANDS:
        result = memlens(*args, db=db, cwd=tmp_path)
        assert result.returncode != 0, (args, result.stdout)
        line = one_line_error(result.stderr)
        assert str(db.name) in line, line
        failed_cleanly += 1
    assert not (tmp_path / "ran").exists()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    print(
        f"FIGURE damaged file ({damage}): {len(COMMANDS)} commands tried, "
        f"{failed_cleanly} gave one line and a non-zero exit, file unchanged"
    )


def test_a_damaged_page_in_the_api_is_a_store_error(tmp_path: Path) -> None:
    db, _ = _stored(tmp_path)
    db.write_bytes(db.read_bytes()[: 4096 * 3])
    with pytest.raises(StoreError), SqliteStore(db, readonly=True) as store:
        store.list()
