"""Fault injection on stored memory: every injected fault detected, recovery to last good + journal.

Faults: a flipped byte in a stored value (in the database file itself, for SQLite),
a truncated record, a deleted record, a damaged snapshot, ``kill -9`` in the middle
of writes, and a Redis restart in the middle of a sync. Each case says what it
injected and checks that ``check_memory`` reports it and that
``recover_corrupted_memory`` brings back exactly the last acknowledged state.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from memlens.context.shared import (
    DistributedMemoryManager,
    check_memory,
    recover_corrupted_memory,
)
from memlens.store import open_record_store
from memlens.store.records import RecordStore
from memlens.store.redis_records import RedisRecordStore
from memlens.store.sqlite_records import SqliteRecordStore
from tests.redis_server import RedisServer

OLD_K03: dict[str, str] = {}


def _seed(store: RecordStore, ns: str = "s", keys: int = 12, snapshot_at: int = 6) -> dict:
    """Writes with a snapshot in the middle: state = snapshot + journal after it."""
    for i in range(keys):
        store.put(ns, f"k{i:02d}", {"text": f"value number {i} " * 4, "i": i}, writer="seed")
        if i == snapshot_at:
            store.snapshot(ns)
    OLD_K03[store.location] = _raw_get(store, ns, "k03")
    store.put(ns, "k03", {"text": "rewritten after the snapshot", "i": 3}, writer="seed")
    return {r.key: r.value for r in store.list(ns)}


def _raw_set(store: RecordStore, ns: str, key: str, body: str | None) -> None:
    """Overwrite (or, with None, delete) a stored record behind the store's back."""
    if isinstance(store, SqliteRecordStore):
        if body is None:
            store._conn.execute("DELETE FROM records WHERE namespace = ? AND key = ?", (ns, key))
        else:
            store._conn.execute(
                "UPDATE records SET body = ? WHERE namespace = ? AND key = ?", (body, ns, key)
            )
    else:
        assert isinstance(store, RedisRecordStore)
        hkey = f"{store.prefix}:rec:{ns}"
        if body is None:
            store._client.hdel(hkey, key)
            store._client.hdel(f"{store.prefix}:ver:{ns}", key)
        else:
            store._client.hset(hkey, key, body)


def _raw_get(store: RecordStore, ns: str, key: str) -> str:
    if isinstance(store, SqliteRecordStore):
        row = store._conn.execute(
            "SELECT body FROM records WHERE namespace = ? AND key = ?", (ns, key)
        ).fetchone()
        return str(row[0])
    assert isinstance(store, RedisRecordStore)
    return str(store._client.hget(f"{store.prefix}:rec:{ns}", key).decode())


def _assert_recovered(store: RecordStore, good: dict, ns: str = "s") -> Any:
    result = recover_corrupted_memory(store, ns)
    assert result.detected, "the fault was not detected"
    assert result.valid, result
    assert result.lost == []
    assert {r.key: r.value for r in store.list(ns)} == good
    assert check_memory(store, ns).ok
    return result


def _flip(text: str, at: int) -> str:
    return text[:at] + chr(ord(text[at]) ^ 0x01) + text[at + 1 :]


CORRUPTIONS = {
    # name -> (function(body) -> new body or None for deletion, expected problem kind)
    "flipped byte": (lambda b: _flip(b, b.index('"text":') + 12), "damaged"),
    "truncated": (lambda b: b[: len(b) // 2], "damaged"),
    "deleted": (lambda b: None, "missing"),
    "swapped for an older version": (None, "stale"),
}


# k01: in the snapshot; k03: in the snapshot and rewritten after it; k10: journal only.
FAULT_CASES = [
    (fault, key)
    for fault in sorted(CORRUPTIONS)
    for key in (["k03"] if fault.startswith("swapped") else ["k01", "k03", "k10"])
]


@pytest.mark.parametrize(("fault", "key"), FAULT_CASES)
def test_injected_record_fault_is_detected_and_recovered(
    record_url: str, fault: str, key: str
) -> None:
    store = open_record_store(record_url)
    good = _seed(store)
    mutate, kind = CORRUPTIONS[fault]
    if mutate is None:
        # A plausible, intact, older record in place of the newer one (a rollback).
        _raw_set(store, "s", key, OLD_K03[store.location])
        if isinstance(store, RedisRecordStore):
            store._client.hset(f"{store.prefix}:ver:s", key, 1)
        else:
            store._conn.execute("UPDATE records SET version = 1 WHERE key = ?", (key,))
    else:
        _raw_set(store, "s", key, mutate(_raw_get(store, "s", key)))
    report = check_memory(store, "s")
    assert [(p.kind, p.ref) for p in report.problems] == [(kind, key)]
    result = _assert_recovered(store, good)
    assert key in result.restored
    assert result.method == "snapshot+journal"


def test_a_damaged_snapshot_falls_back_to_the_journal_and_an_older_snapshot(
    record_url: str,
) -> None:
    store = open_record_store(record_url)
    store.put("s", "a", 1)
    first = store.snapshot("s")
    store.put("s", "b", 2)
    second = store.snapshot("s")
    store.put("s", "c", 3)
    _raw_set(store, "s", "b", None)  # and lose a record the newest snapshot holds
    if isinstance(store, SqliteRecordStore):
        store._conn.execute(
            "UPDATE record_snapshots SET body = replace(body, '\"b\"', '\"B\"') WHERE id = ?",
            (second.id,),
        )
    else:
        assert isinstance(store, RedisRecordStore)
        key = f"{store.prefix}:snap:s"
        entries = [e.decode() for e in store._client.lrange(key, 0, -1)]
        store._client.lset(key, len(entries) - 1, entries[-1].replace('"b"', '"B"'))
    report = check_memory(store, "s")
    kinds = sorted((p.where, p.kind) for p in report.problems)
    assert kinds == [("record", "missing"), ("snapshot", "damaged")]
    result = recover_corrupted_memory(store, "s")
    assert result.valid and result.snapshot_id == first.id
    assert {r.key: r.value for r in store.list("s")} == {"a": 1, "b": 2, "c": 3}
    assert check_memory(store, "s").ok  # the damaged snapshot was retired


def test_a_flipped_byte_in_the_sqlite_file_itself_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    store = open_record_store(f"sqlite:///{path}")
    good = _seed(store)
    store.close()
    data = bytearray(path.read_bytes())
    needle = b"value number 9 value"
    hits = [i for i in range(len(data)) if data.startswith(needle, i)]
    assert hits, "value not found in the file"
    for offset in hits:  # the record, its journal entry and any snapshot copy
        data[offset + 6] ^= 0x01
    path.write_bytes(bytes(data))
    store = open_record_store(f"sqlite:///{path}")
    report = check_memory(store, "s")
    assert report.problems, "a flipped byte in the file went unnoticed"
    assert all(p.kind == "damaged" for p in report.problems)
    result = recover_corrupted_memory(store, "s")
    # Every copy of k09 was flipped (record, journal and snapshot): it cannot come back
    # from this file, and recovery says so instead of inventing a value.
    assert result.lost == ["k09"] and not result.valid
    scan = store.scan("s")
    assert set(scan.records) == set(good) - {"k09"}
    assert [d.ref for d in scan.damaged] == ["k09"]  # kept as found, still flagged


def test_rebuild_from_an_archive_when_nothing_else_holds_a_key(record_url: str) -> None:
    store = open_record_store(record_url)
    store.put("s", "a", {"text": "original a"})
    store.snapshot("s", keep=1)  # prunes the journal: the snapshot is the only copy
    if isinstance(store, SqliteRecordStore):
        store._conn.execute("UPDATE record_snapshots SET checksum = 'x'")
    else:
        assert isinstance(store, RedisRecordStore)
        key = f"{store.prefix}:snap:s"
        entry = store._client.lindex(key, 0).decode()
        store._client.lset(key, 0, entry.replace("original", "0riginal"))
    _raw_set(store, "s", "a", _raw_get(store, "s", "a").replace("original", "0riginal"))
    archive = {"a": {"text": "original a"}}
    result = recover_corrupted_memory(
        store, "s", rebuild=lambda keys: {k: archive[k] for k in keys}
    )
    assert result.method == "rebuild" and result.rebuilt == ["a"] and result.valid
    assert store.get("s", "a").value == {"text": "original a"}  # type: ignore[union-attr]


_WRITER = textwrap.dedent(
    """
    import sys
    from memlens.store import open_record_store
    store = open_record_store(sys.argv[1])
    i = int(sys.argv[2])  # every round continues the numbering, so newer means larger
    while True:
        store.put("s", f"k{i % 40}", {"i": i, "pad": "x" * 2000}, writer="w")
        print(i, flush=True)  # acknowledged: the write returned
        i += 1
    """
)


def test_kill_9_in_the_middle_of_writes_never_damages_or_loses_acknowledged_writes(
    record_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    rng = random.Random(11)
    acknowledged: dict[str, int] = {}
    tried = survived = 0
    start = 0
    for _round in range(12):
        proc = subprocess.Popen(
            [sys.executable, str(script), record_url, str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        target = start + rng.randint(1, 30)
        last = start - 1
        for line in proc.stdout:
            last = int(line)
            if last >= target:
                break
        time.sleep(rng.random() * 0.02)  # land somewhere inside the next write
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        tried += 1
        store = open_record_store(record_url)
        report = check_memory(store, "s")
        assert report.ok, report.problems
        values = {r.key: r.value["i"] for r in store.list("s")}
        for key, i in acknowledged.items():
            assert values[key] >= i  # a later round may have overwritten it
        for i in range(max(0, last - 39), last + 1):
            assert values[f"k{i % 40}"] >= i
        acknowledged = values
        start = max(values.values()) + 1
        store.close()
        survived += 1
    assert (tried, survived) == (12, 12)


@pytest.mark.redis
def test_redis_restarted_mid_sync_loses_nothing(private_redis: RedisServer) -> None:
    manager = DistributedMemoryManager(private_redis.url, writer_id="a", snapshot_every=0)
    for i in range(3000):
        manager.set("s", f"k{i}", {"i": i, "pad": "y" * 200})
    outcome: dict[str, Any] = {}

    def sync() -> None:
        outcome["first"] = manager.sync("s")

    thread = threading.Thread(target=sync)
    thread.start()
    time.sleep(0.05)
    private_redis.restart(kill=True)  # appendfsync always: acknowledged writes survive
    thread.join(60)
    results = [outcome["first"]]
    for _ in range(20):
        if results[-1].success and not manager.pending("s"):
            break
        time.sleep(0.2)
        results.append(manager.sync("s"))
    assert results[-1].success and manager.pending("s") == []
    store = open_record_store(private_redis.url)
    assert check_memory(store, "s").ok
    stored = {r.key: r.value["i"] for r in store.list("s")}
    assert stored == {f"k{i}": i for i in range(3000)}
    print(json.dumps({"first_sync": results[0].success, "syncs": len(results)}))
