"""The SQLite session store: round trips, ids, schema, WAL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from memlens.core.errors import NotFoundError, StoreError
from memlens.core.session import FAILED, Session
from memlens.store import DEFAULT_PATH, SessionStore, SqliteStore, default_path, open_store
from memlens.store.migrations import MIGRATIONS, Migration, current_version, migrate
from tests.sample_sessions import make_session


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(tmp_path / "m.db")
    yield s
    s.close()


def test_save_load_is_lossless(store: SqliteStore) -> None:
    session = make_session(samples=200)
    session.analyses["doctor"] = {"verdict": "leak", "findings": [{"size": 123}]}
    session.tags["env"] = "test"
    assert store.save(session) == session.id
    loaded = store.load(session.id)
    assert loaded == session
    assert loaded.to_dict() == session.to_dict()


def test_store_implements_the_protocol(store: SqliteStore) -> None:
    assert isinstance(store, SessionStore)


def test_list_rows_are_summaries_newest_first(store: SqliteStore) -> None:
    a = make_session("first", session_id="20240101-000000-aaaaaaaa")
    a.metadata.started_at = "2024-01-01T00:00:00+00:00"
    b = make_session("second", session_id="20240102-000000-bbbbbbbb", status=FAILED, kind="doctor")
    b.metadata.started_at = "2024-01-02T00:00:00+00:00"
    store.save(a)
    store.save(b)
    rows = store.list()
    assert [r.id for r in rows] == [b.id, a.id]
    assert rows[0].name == "second" and rows[0].status == FAILED and rows[0].kind == "doctor"
    assert rows[1].peak_rss == a.peak_rss and rows[1].growth == a.growth
    assert rows[1].duration == pytest.approx(a.duration)
    assert not any(r.corrupted for r in rows)
    assert [r.id for r in store.list(kind="doctor")] == [b.id]
    assert [r.id for r in store.list(status="completed")] == [a.id]
    assert len(store.list(limit=1)) == 1


def test_ids_resolve_by_prefix_suffix_and_latest(store: SqliteStore) -> None:
    a = make_session(session_id="20240101-000000-aaaa1111")
    a.metadata.started_at = "2024-01-01T00:00:00+00:00"
    b = make_session(session_id="20240101-000000-bbbb2222")
    b.metadata.started_at = "2024-01-01T00:00:01+00:00"
    store.save(a)
    store.save(b)
    assert store.load("20240101-000000-a").id == a.id
    assert store.load("bbbb2222").id == b.id
    assert store.resolve("latest") == b.id
    with pytest.raises(NotFoundError, match="ambiguous"):
        store.load("20240101")
    with pytest.raises(NotFoundError, match="no session"):
        store.load("nope")
    # LIKE wildcards in the user's text are literal.
    with pytest.raises(NotFoundError):
        store.load("%")


def test_save_replaces_same_id_and_delete(store: SqliteStore) -> None:
    session = make_session()
    store.save(session)
    session.status = FAILED
    store.save(session)
    assert [r.status for r in store.list()] == [FAILED]
    assert store.delete(session.id[:12]) == session.id
    assert store.list() == []
    with pytest.raises(NotFoundError):
        store.delete(session.id)


def test_samples_reads_only_the_series(store: SqliteStore) -> None:
    session = make_session(samples=30)
    store.save(session)
    series = store.samples(session.id)
    assert series == session.series
    assert series.column("rss") == session.series.column("rss")


def test_save_analysis_updates_in_place(store: SqliteStore) -> None:
    session = make_session()
    store.save(session)
    store.save_analysis(session.id, "doctor", {"findings": [1, 2]})
    loaded = store.load(session.id)
    assert loaded.analyses == {"doctor": {"findings": [1, 2]}}
    assert loaded.series == session.series
    with pytest.raises(StoreError, match="JSON"):
        store.save_analysis(session.id, "bad", {"x": object()})
    assert store.load(session.id).analyses == {"doctor": {"findings": [1, 2]}}


def test_database_is_in_wal_mode_with_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert current_version(conn) == MIGRATIONS[-1].version
    conn.close()


def test_migrations_apply_in_order_once(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    steps = (
        Migration(1, "t", ("CREATE TABLE t (a INTEGER)",)),
        Migration(2, "add b", ("ALTER TABLE t ADD COLUMN b TEXT",)),
    )
    assert migrate(conn, steps[:1]) == 1
    assert migrate(conn, steps) == 2
    assert migrate(conn, steps) == 2  # idempotent
    columns = [r[1] for r in conn.execute("PRAGMA table_info(t)")]
    assert columns == ["a", "b"]
    with pytest.raises(StoreError, match="newer"):
        migrate(conn, steps[:1])
    with pytest.raises(ValueError):
        migrate(conn, (steps[1],))


def test_failed_migration_rolls_back(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    bad = (Migration(1, "t", ("CREATE TABLE t (a)", "THIS IS NOT SQL")),)
    with pytest.raises(sqlite3.Error):
        migrate(conn, bad)
    assert current_version(conn) == 0
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 't'").fetchone() is None


def test_newer_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (99, 'later', 'future')")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        SqliteStore(path)


def test_default_path_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MEMLENS_DB", raising=False)
    assert default_path() == DEFAULT_PATH == Path(".memlens/memlens.db")
    monkeypatch.chdir(tmp_path)
    store = open_store()
    store.save(make_session())
    store.close()
    assert (tmp_path / ".memlens" / "memlens.db").exists()
    assert (tmp_path / ".memlens" / ".gitignore").read_text() == "*\n"
    monkeypatch.setenv("MEMLENS_DB", str(tmp_path / "env.db"))
    assert default_path() == tmp_path / "env.db"
    open_store().close()
    assert (tmp_path / "env.db").exists()
    # An explicit path wins over the environment.
    open_store(tmp_path / "arg.db").close()
    assert (tmp_path / "arg.db").exists()


def test_read_only_open_does_not_create(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "m.db"
    with pytest.raises(NotFoundError, match="no session store"):
        open_store(path, create=False)
    assert not path.parent.exists()


def test_roundtrip_of_a_session_with_no_samples(store: SqliteStore) -> None:
    session = Session(name="empty")
    store.save(session)
    assert store.load(session.id) == session
