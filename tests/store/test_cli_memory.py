"""``memlens memory check`` / ``memlens memory recover`` in real subprocesses."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from memlens.context.shared import DistributedMemoryManager
from memlens.store import open_record_store
from tests.memlens_cli import memlens, one_line_error


def _seed(url: str) -> None:
    manager = DistributedMemoryManager(url, writer_id="seed", snapshot_every=0)
    for i in range(6):
        manager.set("assistant-1", f"note{i}", {"text": f"remember {i}"})
    manager.sync("assistant-1")
    manager.snapshot("assistant-1")
    manager.set("assistant-1", "note5", {"text": "remember five, updated"})
    manager.sync("assistant-1")
    manager.set("assistant-2", "prefs", {"tone": "terse"})
    manager.sync("assistant-2")
    manager.close()


def _damage(url: str, key: str) -> None:
    store = open_record_store(url)
    from memlens.store.redis_records import RedisRecordStore
    from memlens.store.sqlite_records import SqliteRecordStore

    if isinstance(store, SqliteRecordStore):
        store._conn.execute(
            "UPDATE records SET body = replace(body, 'remember', 'rememb3r') WHERE key = ?",
            (key,),
        )
    else:
        assert isinstance(store, RedisRecordStore)
        hkey = f"{store.prefix}:rec:assistant-1"
        store._client.hset(hkey, key, store._client.hget(hkey, key).replace(b"remember", b"x"))
    store.close()


def test_check_finds_damage_without_touching_the_store_and_recover_repairs_it(
    record_url: str, tmp_path: Path
) -> None:
    db = tmp_path / "unused.db"
    _seed(record_url)
    ok = memlens("memory", "check", record_url, db=db)
    assert ok.returncode == 0, ok.stderr
    assert "assistant-1" in ok.stdout and "assistant-2" in ok.stdout and "ok" in ok.stdout
    _damage(record_url, "note2")
    file = Path(record_url[len("sqlite:///") :]) if record_url.startswith("sqlite") else None
    before = hashlib.sha256(file.read_bytes()).hexdigest() if file else ""
    bad = memlens("memory", "check", record_url, db=db)
    assert bad.returncode == 1
    assert "note2: damaged (checksum mismatch)" in bad.stdout
    assert "memlens memory recover assistant-1" in bad.stdout
    if file:
        assert hashlib.sha256(file.read_bytes()).hexdigest() == before
    as_json = json.loads(memlens("memory", "check", record_url, "--json", db=db).stdout)
    assert {r["namespace"]: r["ok"] for r in as_json} == {"assistant-1": False, "assistant-2": True}
    fixed = memlens("memory", "recover", "assistant-1", "--db", record_url, db=db)
    assert fixed.returncode == 0, fixed.stderr
    assert "recovered by snapshot+journal" in fixed.stdout and "restored 1" in fixed.stdout
    assert memlens("memory", "check", record_url, db=db).returncode == 0
    values = {r.key: r.value for r in open_record_store(record_url).list("assistant-1")}
    assert values["note2"] == {"text": "remember 2"}
    assert values["note5"] == {"text": "remember five, updated"}


def test_bad_targets_are_one_line(tmp_path: Path) -> None:
    app = tmp_path / "app.sqlite"
    conn = sqlite3.connect(app)
    conn.execute("CREATE TABLE orders (id INTEGER)")
    conn.commit()
    conn.close()
    db = tmp_path / "unused.db"
    for args in (
        ["memory", "check", str(app)],
        ["memory", "recover", "x", "--db", str(app)],
        ["memory", "check", str(tmp_path / "missing.db")],
        ["memory", "recover", "nope", "--db", f"sqlite:///{app}"],
    ):
        result = memlens(*args, db=db)
        assert result.returncode == 2, (args, result.stdout)
        one_line_error(result.stderr)
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.redis
def test_recover_of_an_unknown_session_is_one_line(redis_url: str, tmp_path: Path) -> None:
    result = memlens("memory", "recover", "nobody", "--db", redis_url, db=tmp_path / "x.db")
    assert "no memory session 'nobody'" in one_line_error(result.stderr)
