"""The record-store contract, on both backends (SQLite file, real redis-server)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from memlens.core.errors import StoreError
from memlens.store import open_record_store
from memlens.store.records import (
    CorruptRecordError,
    PutRequest,
    RecordStore,
    VersionConflict,
)


@pytest.fixture
def store(record_url: str) -> RecordStore:
    s = open_record_store(record_url)
    yield s  # type: ignore[misc]
    s.close()


def test_versions_grow_and_compare_and_set_refuses_stale_writes(store: RecordStore) -> None:
    first = store.put("s1", "prefs", {"tone": "terse"}, writer="a")
    assert (first.version, first.writer, first.deleted) == (1, "a", False)
    assert first.is_intact()
    second = store.put("s1", "prefs", {"tone": "warm"}, expected_version=1, writer="b")
    assert second.version == 2
    with pytest.raises(VersionConflict) as info:
        store.put("s1", "prefs", {"tone": "stale"}, expected_version=1, writer="a")
    assert info.value.current is not None and info.value.current.value == {"tone": "warm"}
    with pytest.raises(VersionConflict):
        store.put("s1", "prefs", "x", expected_version=0)  # 0 means "must not exist"
    got = store.get("s1", "prefs")
    assert got == second
    assert store.get("s1", "missing") is None
    assert store.get("other", "prefs") is None


def test_delete_leaves_a_tombstone_with_the_next_version(store: RecordStore) -> None:
    store.put("s", "a", 1)
    store.put("s", "b", 2)
    tomb = store.delete("s", "a", expected_version=1)
    assert (tomb.version, tomb.deleted, tomb.value) == (2, True, None)
    assert store.keys("s") == ["b"]
    assert [r.key for r in store.list("s")] == ["b"]
    assert [r.key for r in store.list("s", include_deleted=True)] == ["a", "b"]
    again = store.put("s", "a", 3, expected_version=2)
    assert again.version == 3 and not again.deleted


def test_journal_holds_every_write_in_order(store: RecordStore) -> None:
    for i in range(5):
        store.put("s", f"k{i % 2}", i, writer="w")
    store.delete("s", "k0")
    journal = store.journal("s")
    assert not journal.damaged
    assert [(e.record.key, e.record.value, e.record.version) for e in journal.entries] == [
        ("k0", 0, 1),
        ("k1", 1, 1),
        ("k0", 2, 2),
        ("k1", 3, 2),
        ("k0", 4, 3),
        ("k0", None, 4),
    ]
    seqs = [e.seq for e in journal.entries]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    assert store.head("s") == seqs[-1]
    assert [e.record.value for e in store.journal("s", after=seqs[3]).entries] == [4, None]
    assert store.namespaces() == ["s"]


def test_put_many_checks_each_write_on_its_own(store: RecordStore) -> None:
    store.put("s", "a", 1)
    results = store.put_many(
        "s",
        [
            PutRequest("a", 2, expected_version=1),
            PutRequest("b", 1, expected_version=5),
            PutRequest("c", 1),
            PutRequest("a", None, expected_version=2, delete=True),
        ],
        writer="batch",
    )
    assert [type(r).__name__ for r in results] == [
        "Record",
        "VersionConflict",
        "Record",
        "Record",
    ]
    assert store.get("s", "a").deleted  # type: ignore[union-attr]
    assert store.get("s", "b") is None


def test_snapshots_keep_the_newest_and_prune_the_journal(store: RecordStore) -> None:
    for i in range(3):
        store.put("s", "k", i)
    infos = []
    for i in range(4):
        store.put("s", f"x{i}", i)
        infos.append(store.snapshot("s", keep=2))
    listed = store.snapshots("s")
    assert [s.id for s in listed] == [infos[3].id, infos[2].id]
    records = store.load_snapshot("s", infos[2].id)
    assert sorted(records) == ["k", "x0", "x1", "x2"] and records["k"].value == 2
    # Entries up to the oldest kept snapshot are gone; the ones after it remain.
    assert [e.seq for e in store.journal("s").entries] == [store.head("s")]
    assert store.journal("s").entries[0].record.key == "x3"


def test_replace_all_is_conditional_on_the_journal_head(store: RecordStore) -> None:
    store.put("s", "a", 1)
    store.put("s", "b", 2)
    kept = {r.key: r for r in store.list("s") if r.key == "a"}
    head = store.head("s")
    store.put("s", "c", 3)
    with pytest.raises(VersionConflict):
        store.replace_all("s", kept, expected_head=head)
    store.replace_all("s", kept, expected_head=store.head("s"))
    assert [r.key for r in store.list("s")] == ["a"]
    store.drop("s")
    assert store.list("s") == [] and store.namespaces() == []


def test_values_must_be_json(store: RecordStore) -> None:
    with pytest.raises(StoreError, match="JSON"):
        store.put("s", "k", {1, 2})
    with pytest.raises(StoreError, match="JSON"):
        store.put("s", "k", math.nan)
    with pytest.raises(StoreError, match="invalid key"):
        store.put("s", "", 1)
    assert store.list("s") == []


def test_a_damaged_record_is_reported_never_skipped(record_url: str, tmp_path: Path) -> None:
    store = open_record_store(record_url)
    store.put("s", "good", 1)
    store.put("s", "bad", {"text": "original"})
    _tamper(store, "s", "bad")
    with pytest.raises(CorruptRecordError, match="bad"):
        store.get("s", "bad")
    with pytest.raises(CorruptRecordError):
        store.list("s")
    scan = store.scan("s")
    assert list(scan.records) == ["good"]
    assert [(d.ref, d.reason) for d in scan.damaged] == [("bad", "checksum mismatch")]
    with pytest.raises(CorruptRecordError):
        store.snapshot("s")
    store.close()


def _tamper(store: RecordStore, namespace: str, key: str) -> None:
    """Change a stored value behind the store's back (a flipped byte in its JSON)."""
    from memlens.store.redis_records import RedisRecordStore
    from memlens.store.sqlite_records import SqliteRecordStore

    if isinstance(store, SqliteRecordStore):
        conn = store._conn
        body = conn.execute(
            "SELECT body FROM records WHERE namespace = ? AND key = ?", (namespace, key)
        ).fetchone()[0]
        conn.execute(
            "UPDATE records SET body = ? WHERE namespace = ? AND key = ?",
            (body.replace("original", "origInal"), namespace, key),
        )
    else:
        assert isinstance(store, RedisRecordStore)
        hkey = f"{store.prefix}:rec:{namespace}"
        body = store._client.hget(hkey, key).decode()
        store._client.hset(hkey, key, body.replace("original", "origInal"))


def test_unreachable_redis_is_one_clear_line() -> None:
    from tests.redis_server import free_port

    pytest.importorskip("redis")
    with pytest.raises(StoreError, match="cannot reach Redis at redis://127.0.0.1") as info:
        open_record_store(f"redis://127.0.0.1:{free_port()}/0")
    assert "\n" not in str(info.value)


def test_passwords_never_show_in_the_location() -> None:
    from memlens.store._redis import safe_location, split_url

    assert safe_location("redis://user:s3cret@host:6380/1") == "redis://user:***@host:6380/1"
    clean, prefix, _ = split_url("redis://h:1/2?prefix=fleet&x=1")
    assert prefix == "fleet" and "prefix" not in clean and "x=1" in clean
