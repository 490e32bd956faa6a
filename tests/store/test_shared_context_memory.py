"""A ContextMemory shared by workers through the DistributedMemoryManager, both backends.

In-process pairs check the merge rules (items travel, a raced cache key is decided
and the loser archived, a fit on one worker retires the items on the other and
``expand`` still finds the originals); real subprocesses check the scale (eight
workers on one store, nothing lost) and the CLI; a real Redis is stopped in the
middle to check the outage path; a damaged store is rebuilt from the archive.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from memlens.context.shared import DistributedMemoryManager, SharedContextMemory
from memlens.context.shared.memory import ENTRY, archive_namespace, read_shared_memory
from memlens.store import open_record_store
from memlens.store.sqlite_records import SqliteRecordStore
from tests.bench_module import load_benchmark
from tests.memlens_cli import memlens
from tests.redis_server import RedisServer
from tests.store.test_memory_faults import _raw_get, _raw_set


def _workload() -> ModuleType:
    return load_benchmark("shared_context")


def _memory(url: str, writer: str, **kw: object) -> SharedContextMemory:
    return SharedContextMemory(DistributedMemoryManager(url, writer_id=writer), "team", **kw)


def test_items_travel_and_ids_never_collide(record_url: str) -> None:
    a, b = _memory(record_url, "w-a"), _memory(record_url, "w-b")
    a.add_system("You are the refunds assistant.")
    first = a.add_message("user", "Where is the refund for order 17?")
    other = b.add_message("user", "Close ticket 9, please.")
    assert first.id != other.id  # both were the first message of their worker
    assert a.sync().success and b.sync().success and a.sync().success
    assert sorted(a.entries) == sorted(b.entries)
    assert {first.id, other.id} < set(a.entries) and len(a.entries) == 3
    assert b.entries[first.id].content == "Where is the refund for order 17?"
    assert a.tokens == b.tokens
    later = _memory(record_url, "w-c")  # a new worker starts from the shared window
    assert sorted(later.entries) == sorted(a.entries)
    assert later.ordered()[-1].seq >= max(e.seq for e in a.entries.values())
    added = later.add_message("assistant", "Done.")
    assert added.seq > max(e.seq for e in a.entries.values())


def test_a_raced_cache_key_is_decided_listed_and_the_loser_archived(record_url: str) -> None:
    a, b = _memory(record_url, "w-a"), _memory(record_url, "w-b")
    mine = a.cache_put("status", "a: step 3 of 5")
    theirs = b.cache_put("status", "b: step 4 of 5")
    assert a.sync().success
    result = b.sync()
    assert [c.key for c in result.conflicts] == ["cache/status"]
    a.sync()
    assert a.cache_get("status") == b.cache_get("status")
    winner = a.cache_get("status")
    loser = mine if winner == "b: step 4 of 5" else theirs
    assert loser.id not in a.entries and loser.id not in b.entries
    assert a.expand(loser.id)[0].content == loser.content  # archived, not dropped


def _edits() -> list[tuple[str, object]]:
    """One edit per field a stored entry carries (the in-place ones a fingerprint must see)."""
    from datetime import datetime, timezone

    from memlens.context.layers import Layer
    from memlens.context.memory.entries import Priority

    def payload_in_place(e: object) -> None:
        e.payload["raw"]["text"] = "edited in place"  # type: ignore[attr-defined]

    def notes_in_place(e: object) -> None:
        e.notes.append("checked")  # type: ignore[attr-defined]

    return [
        ("layer", Layer.WORKING_MEMORY),
        ("content", "a new text"),
        ("tokens", 99),
        ("original_tokens", 101),
        ("sublayer", "files"),
        ("role", "assistant"),
        ("kind", "file"),
        ("priority", Priority.HIGH),
        ("pinned", True),
        ("created", datetime(2026, 1, 2, tzinfo=timezone.utc)),
        ("group", "g-7"),
        ("turn", 41),
        ("level", 2),
        ("seq", 777),
        ("overhead", 9),
        ("archived", True),
        ("notes", notes_in_place),
        ("payload", payload_in_place),
    ]


@pytest.mark.parametrize("field,edit", _edits(), ids=[name for name, _ in _edits()])
def test_every_edit_of_an_entry_travels_even_in_place(
    record_url: str, field: str, edit: object
) -> None:
    from memlens.context.shared.memory import decode_entry, encode_entry

    a, b = _memory(record_url, "w-a"), _memory(record_url, "w-b")
    item = a.add_message("user", "Where is the refund?", payload={"raw": {"text": "x"}})
    filler = [a.add_message("assistant", f"note {i}").id for i in range(5)]
    assert a.sync().success and b.sync().success
    before = dict(b.entries[item.id].__dict__)
    if callable(edit):
        edit(a.entries[item.id])
    else:
        setattr(a.entries[item.id], field, edit)
    result = a.sync()
    assert result.success and result.pushed == 1  # only the edited entry was written
    assert b.sync().success
    theirs = b.entries[item.id]
    assert getattr(theirs, field) != before[field]
    assert encode_entry(theirs) == encode_entry(a.entries[item.id])
    assert decode_entry(item.id, encode_entry(theirs)).__dict__[field] == getattr(theirs, field)
    assert all(b.entries[i].content == a.entries[i].content for i in filler)
    assert a.sync().pushed == 0 and b.sync().pushed == 0  # nothing left to write


def test_the_change_feed_names_only_what_changed(record_url: str) -> None:
    manager = DistributedMemoryManager(record_url, writer_id="w-a")
    manager.set("s", "one", 1)
    manager.set("s", "two", 2)
    first = manager.changes("s")
    assert first.values == {"one": 1, "two": 2} and not first.deleted
    assert manager.sync("s").success
    assert manager.changes("s", first.stamp).values == {}  # a sync of our own writes
    other = DistributedMemoryManager(record_url, writer_id="w-b")
    other.set("s", "two", 20)
    other.delete("s", "one")
    assert other.sync("s").success
    assert manager.sync("s").success
    later = manager.changes("s", first.stamp)
    assert later.values == {"two": 20} and later.deleted == {"one"}
    assert manager.changes("s", later.stamp).values == {}
    manager.close()
    other.close()


def test_a_fit_on_one_worker_retires_on_the_other_and_expand_finds_originals(
    record_url: str,
) -> None:
    a = _memory(record_url, "w-a", budget=100_000, keep_last_turns=1)
    b = _memory(record_url, "w-b", budget=100_000, keep_last_turns=1)
    texts = {}
    for i in range(12):
        entry = (a if i % 2 else b).add_message(
            "user" if i % 2 == 0 else "assistant", f"message {i} about invoice {i * 11} " * 6
        )
        texts[entry.id] = entry.content
    assert a.sync().success and b.sync().success and a.sync().success
    report = a.fit(a.tokens // 3)
    assert report.fits and (report.evicted or report.summaries)
    assert a.sync().success and b.sync().success
    assert sorted(a.entries) == sorted(b.entries) and a.tokens == b.tokens
    gone = [i for i in texts if i not in b.entries]
    assert gone, "the fit replaced nothing"
    for entry_id in gone:
        assert b.expand(entry_id)[0].content == texts[entry_id]
    for summary in report.summaries:
        if summary in b.entries:
            originals = {x.item_id: x.content for x in b.expand(summary)}
            assert all(texts[i] == t for i, t in originals.items() if i in texts)


@pytest.mark.parametrize("how", ["recover", "sync", "cli"])
def test_a_stored_window_is_rebuilt_from_the_archive(tmp_path: Path, how: str) -> None:
    db = tmp_path / "m.db"
    url = f"sqlite:///{db}"
    manager = DistributedMemoryManager(url, writer_id="w", keep_snapshots=1, snapshot_every=0)
    memory = SharedContextMemory(manager, "team", budget=100_000, keep_last_turns=1)
    for i in range(10):
        memory.add_message("user" if i % 2 == 0 else "assistant", f"turn {i}: details " * 40)
    memory.compress()
    memory.fit(memory.tokens // 2)
    archived_live = [e for e in memory.entries.values() if e.archived]
    assert archived_live, "expected a summarised item whose original is archived"
    victim = archived_live[0]
    original = memory.archive.get(victim.id).content
    assert memory.sync().success
    manager.snapshot("team")  # keep=1: the journal is pruned, the snapshot is the only copy
    store = manager.store
    assert isinstance(store, SqliteRecordStore)
    store._conn.execute("UPDATE record_snapshots SET checksum = 'x'")
    key = ENTRY + victim.id
    _raw_set(store, "team", key, _raw_get(store, "team", key).replace("turn", "tvrn", 1))
    if how == "recover":
        result = memory.recover()
        assert result.method == "rebuild" and result.rebuilt == [key] and result.valid, result
    elif how == "sync":
        # Another worker opening the window meets the damage and repairs it first.
        other = DistributedMemoryManager(url, writer_id="w2")
        fresh = SharedContextMemory(other, "team", keep_last_turns=1)
        assert fresh.last_sync is not None and fresh.last_sync.success
        assert [e.kind for e in other.events] == ["recovered"] and not other.degraded
        assert fresh.entries[victim.id].content == original
    else:
        done = memlens("memory", "recover", "team", "--db", str(db), db=db)
        assert done.returncode == 0, done.stderr
        assert "recovered by rebuild" in done.stdout and "rebuilt 1, lost 0" in done.stdout
    rebuilt = read_shared_memory(open_record_store(url), "team")
    item = next(i for i in rebuilt.items if i.entry.id == victim.id)
    assert item.entry.content == original and "rebuilt from the archive" in item.entry.notes


def test_eight_processes_on_one_store_lose_nothing_and_the_cli_shows_it(
    record_url: str, tmp_path: Path
) -> None:
    workload = _workload()
    outcome = workload.run(record_url, "x", 8, 8)
    assert outcome.silently_lost == 0
    assert outcome.added == 8 * (8 + 1) and outcome.live + outcome.archived_only == outcome.added
    assert outcome.archived_only > 0  # the two fits and the cache race did replace items
    shown = memlens(
        "memory", "show", workload.SESSION, "--db", record_url, "--json", db=tmp_path / "x.db"
    )
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert len(view["items"]) == outcome.window_items and view["tokens"] == outcome.window_tokens
    texts = {i["id"] for i in view["items"]} | set(view["archived"])
    assert all(f"w{n}" in " ".join(sorted(texts)) for n in range(8))


def test_cli_add_fit_and_show(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    for i in range(6):
        role = "user" if i % 2 == 0 else "assistant"
        text = f"step {i}: check the ledger entries for order {i} " * 8
        done = memlens(
            "memory", "add", "team", text, "--role", role, "--writer", f"w{i % 2}", db=db
        )
        assert done.returncode == 0, done.stderr
        assert (
            done.stdout.startswith("team: added conversation_history:w")
            and "version" in done.stdout
        )
    fitted = memlens(
        "memory",
        "fit",
        "team",
        "--budget",
        "200",
        "--keep-last-turns",
        "1",
        "--writer",
        "op",
        db=db,
    )
    assert fitted.returncode == 0, fitted.stderr
    assert "-> " in fitted.stdout and "synced at version" in fitted.stdout
    shown = memlens("memory", "show", "team", db=db)
    assert shown.returncode == 0 and "originals archived" in shown.stdout
    view = json.loads(memlens("memory", "show", "team", "--json", db=db).stdout)
    assert view["tokens"] <= 200 and view["archived"]
    missing = memlens("memory", "show", "nope", db=db)
    assert missing.returncode != 0 and missing.stderr.count("\n") == 1
    assert "no memory session 'nope'" in missing.stderr


@pytest.mark.redis
def test_a_redis_outage_keeps_the_window_and_its_originals(private_redis: RedisServer) -> None:
    memory = _memory(private_redis.url, "w-a", budget=100_000, keep_last_turns=1)
    for i in range(8):
        memory.add_message("user" if i % 2 == 0 else "assistant", f"before {i}: " + "x y " * 50)
    assert memory.sync().success
    private_redis.stop(kill=True)
    during = memory.add_message("user", "written while Redis is down " * 10)
    report = memory.fit(memory.tokens // 3)  # archives originals: spilled locally
    assert report.fits and memory.archive.spilled  # type: ignore[attr-defined]
    failed = memory.sync()
    assert not failed.success and memory.manager.degraded
    assert during.id in memory.entries
    private_redis.start()
    assert memory.sync().success
    assert not memory.archive.spilled  # type: ignore[attr-defined]
    fresh = _memory(private_redis.url, "w-b")
    assert sorted(fresh.entries) == sorted(memory.entries)
    for entry_id in memory.replaced_by:
        assert fresh.expand(entry_id)[0].content.startswith("before")
    store = open_record_store(private_redis.url)
    assert store.keys(archive_namespace("team"))
