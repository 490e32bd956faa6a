"""The session store on a real redis-server: the API, the CLI and the monitor's flush."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from memlens.core.errors import NotFoundError, StoreError
from memlens.store import SessionStore, open_store
from memlens.store.redis_sessions import RedisSessionStore
from tests.memlens_cli import memlens, one_line_error
from tests.sample_sessions import make_session

pytestmark = pytest.mark.redis


def test_save_load_list_resolve_delete(redis_url: str) -> None:
    store = open_store(redis_url)
    assert isinstance(store, RedisSessionStore) and isinstance(store, SessionStore)
    a = make_session("alpha", session_id="20240101-000000-aaaa0001")
    a.metadata.started_at = "2024-01-01T00:00:00+00:00"
    b = make_session("beta", session_id="20240102-000000-bbbb0002", kind="doctor")
    b.metadata.started_at = "2024-01-02T00:00:00+00:00"
    store.save(a)
    store.save(b)
    assert store.load(a.id) == a
    assert store.samples(b.id).to_dict() == b.series.to_dict()
    rows = store.list()
    assert [r.id for r in rows] == [b.id, a.id]
    assert rows[1].peak_rss == a.peak_rss and not rows[1].corrupted
    assert [r.name for r in store.list(kind="doctor")] == ["beta"]
    assert store.resolve("aaaa0001") == a.id
    assert store.resolve("latest") == b.id
    store.save_analysis(a.id, "note", {"ok": True})
    assert store.load(a.id).analyses["note"] == {"ok": True}
    assert store.delete(b.id) == b.id
    with pytest.raises(NotFoundError):
        store.load(b.id)
    store.close()


def test_a_damaged_blob_is_flagged_and_refused(redis_url: str) -> None:
    store = open_store(redis_url)
    assert isinstance(store, RedisSessionStore)
    good, bad = make_session("good"), make_session("bad")
    store.save(good)
    store.save(bad)
    key = f"{store.prefix}:session:{bad.id}"
    blob = bytearray(store._client.hget(key, "body"))
    blob[len(blob) // 2] ^= 0x01
    store._client.hset(key, "body", bytes(blob))
    flagged = {r.name: r.corrupted for r in store.list()}
    assert flagged == {"good": False, "bad": True}
    with pytest.raises(StoreError, match="corrupted"):
        store.load(bad.id)
    assert store.load(good.id) == good


def test_readonly_refuses_writes(redis_url: str) -> None:
    store = open_store(redis_url, readonly=True)
    with pytest.raises(StoreError, match="read-only"):
        store.save(make_session())


def test_cli_run_sessions_show_export_rm_on_redis(redis_url: str, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("data = [bytes(1000) for _ in range(2000)]\nprint('done')\n")
    db = tmp_path / "unused.db"
    run = memlens("run", "--db", redis_url, "--no-html", str(script), db=db)
    assert run.returncode == 0, run.stderr
    assert "done" in run.stdout
    rows = json.loads(memlens("sessions", "--json", "--db", redis_url, db=db).stdout)
    assert [r["name"] for r in rows] == ["job.py"] and rows[0]["status"] == "completed"
    shown = memlens("show", "latest", "--db", redis_url, db=db)
    assert shown.returncode == 0 and "job.py" in shown.stdout
    exported = memlens("export", "latest", "--format", "jsonl", "--db", redis_url, db=db)
    assert exported.returncode == 0, exported.stderr
    assert len(exported.stdout.splitlines()) >= 1
    gone = memlens("rm", rows[0]["id"], "--db", redis_url, db=db)
    assert gone.returncode == 0, gone.stderr
    assert json.loads(memlens("sessions", "--json", "--db", redis_url, db=db).stdout) == []
    assert not db.exists()


def test_cli_unreachable_redis_is_one_line_before_the_program_runs(tmp_path: Path) -> None:
    from tests.redis_server import free_port

    marker = tmp_path / "ran"
    script = tmp_path / "job.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    url = f"redis://127.0.0.1:{free_port()}/0"
    for args in (["run", "--db", url, str(script)], ["sessions", "--db", url]):
        result = memlens(*args, db=tmp_path / "x.db")
        assert "cannot reach Redis" in one_line_error(result.stderr)
        assert result.returncode != 0
    assert not marker.exists()


def test_monitor_flushes_to_redis(redis_url: str, tmp_path: Path) -> None:
    program = tmp_path / "service.py"
    program.write_text(
        textwrap.dedent(
            f"""
            import memlens
            m = memlens.Monitor(memlens.Config(service_name="svc", db_path={redis_url!r}))
            m.start()
            m.flush()
            m.stop()
            print("flush errors", m.flush_errors)
            """
        )
    )
    import subprocess

    env_run = subprocess.run(
        [sys.executable, str(program)], capture_output=True, text=True, timeout=120
    )
    assert env_run.returncode == 0, env_run.stderr
    assert "flush errors 0" in env_run.stdout
    rows = open_store(redis_url).list(kind="monitor")
    assert [r.name for r in rows] == ["svc"]
