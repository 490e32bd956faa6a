"""DistributedMemoryManager on both backends: sync, conflicts, outages, background, fork."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from memlens.context.shared import DistributedMemoryManager, SyncResult
from memlens.core.errors import ConfigError
from memlens.store import open_record_store
from tests.redis_server import RedisServer, require_redis


def _pair(url: str, strategy: str = "timestamp") -> tuple[DistributedMemoryManager, ...]:
    return tuple(
        DistributedMemoryManager(url, writer_id=w, strategy=strategy)  # type: ignore[arg-type]
        for w in ("a", "b")
    )


def test_changes_travel_between_workers(record_url: str) -> None:
    a, b = _pair(record_url)
    a.set("s1", "prefs", {"tone": "terse"})
    a.set("s1", "notes", ["n1"])
    assert a.pending("s1") == ["notes", "prefs"]
    result = a.sync("s1")
    assert isinstance(result, SyncResult) and result.success, result.error
    assert (result.pushed, result.conflicts_resolved, result.conflicts) == (2, 0, [])
    assert result.version >= 2 and a.pending("s1") == []
    assert b.get("s1", "prefs") == {"tone": "terse"}
    b.delete("s1", "notes")
    assert b.sync("s1").success
    pulled = a.sync("s1")
    assert pulled.pulled == 1 and a.get("s1", "notes") is None
    assert a.items("s1") == {"prefs": {"tone": "terse"}}
    record = open_record_store(record_url).get("s1", "prefs")
    assert record is not None and record.writer == "a" and record.is_intact()


@pytest.mark.parametrize(
    ("strategy", "winner", "resolution"),
    [("remote-wins", "b", "remote"), ("local-wins", "a", "local"), ("timestamp", "a", "local")],
)
def test_each_conflict_is_decided_and_listed(
    record_url: str, strategy: str, winner: str, resolution: str
) -> None:
    a, b = _pair(record_url, strategy)
    a.set("s", "k", "base")
    a.sync("s")
    b.sync("s")
    b.set("s", "k", "b")
    assert b.sync("s").success
    time.sleep(0.01)  # a's change is the later one
    a.set("s", "k", "a")
    result = a.sync("s")
    assert result.success and result.conflicts_resolved == 1
    (conflict,) = result.conflicts
    assert (conflict.key, conflict.local_value, conflict.remote_value) == ("k", "a", "b")
    assert (conflict.strategy, conflict.resolution, conflict.remote_writer) == (
        strategy,
        resolution,
        "b",
    )
    b.sync("s")
    assert a.get("s", "k") == b.get("s", "k") == winner


def test_per_key_strategies_and_merge_callables(record_url: str) -> None:
    def union(key: str, local: object, remote: object) -> object:
        return sorted(set(local) | set(remote.value))  # type: ignore[arg-type, attr-defined]

    a = DistributedMemoryManager(
        record_url, writer_id="a", strategy="remote-wins", strategies={"tags*": union}
    )
    b = DistributedMemoryManager(record_url, writer_id="b")
    assert a.items("s") == {}  # a loads the session before b writes
    b.set("s", "tags", ["x"])
    b.set("s", "title", "from b")
    b.sync("s")
    a.set("s", "tags", ["y"])  # a never saw b's version: both are new
    a.set("s", "title", "from a")
    result = a.sync("s")
    by_key = {c.key: c.resolution for c in result.conflicts}
    assert by_key == {"tags": "merged", "title": "remote"}
    assert a.get("s", "tags") == ["x", "y"] and a.get("s", "title") == "from b"


def test_async_api_and_bad_options(record_url: str) -> None:
    manager = DistributedMemoryManager(record_url, writer_id="a")
    manager.set("s", "k", 1)
    result = asyncio.run(manager.sync_session_memory("s"))
    assert result.success and result.pushed == 1
    with pytest.raises(ConfigError, match="strategy"):
        DistributedMemoryManager(record_url, strategy="newest")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="sync_interval"):
        DistributedMemoryManager(record_url, sync_interval=0)
    with pytest.raises(Exception, match="JSON"):
        manager.set("s", "k", object())


def test_background_sync_delivers_and_stops(record_url: str) -> None:
    a = DistributedMemoryManager(record_url, writer_id="a")
    b = DistributedMemoryManager(record_url, writer_id="b")
    a.start_background_sync(interval=0.1)
    assert a.background_sync_running
    a.set("s", "k", "v")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        b.sync("s")
        if b.get("s", "k") == "v":
            break
        time.sleep(0.05)
    assert b.get("s", "k") == "v"
    a.set("s", "last", 1)
    a.stop_background_sync()  # the last round writes what is still pending
    assert not a.background_sync_running and a.pending("s") == []
    assert [t.name for t in __import__("threading").enumerate() if t.name == "memlens-sync"] == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_syncs_through_its_own_connection(record_url: str) -> None:
    manager = DistributedMemoryManager(record_url, writer_id="parent")
    manager.set("s", "parent", 1)
    assert manager.sync("s").success
    pid = os.fork()
    if pid == 0:  # child: must not reuse the parent's socket or SQLite handle
        code = 1
        try:
            manager.set("s", "child", 2)
            code = 0 if manager.sync("s").success else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert manager.sync("s").success
    assert manager.get("s", "child") == 2


@pytest.mark.redis
def test_outage_degrades_to_local_and_catches_up(private_redis: RedisServer) -> None:
    events: list[str] = []
    manager = DistributedMemoryManager(
        private_redis.url, writer_id="a", on_event=lambda e: events.append(e.kind)
    )
    manager.set("s", "before", 1)
    assert manager.sync("s").success
    private_redis.stop(kill=True)
    manager.set("s", "during", 2)  # local writes keep working
    failed = manager.sync("s")
    assert not failed.success and "cannot reach Redis" in (failed.error or "")
    assert manager.degraded and events == ["degraded"]
    assert manager.get("s", "during") == 2 and manager.pending("s") == ["during"]
    private_redis.start()
    caught_up = manager.sync("s")
    assert caught_up.success and caught_up.pushed == 1, caught_up.error
    assert events == ["degraded", "reconnected"] and not manager.degraded
    other = DistributedMemoryManager(private_redis.url, writer_id="b")
    assert other.items("s") == {"before": 1, "during": 2}


@pytest.mark.redis
def test_a_redis_that_forgot_everything_is_written_back(tmp_path: Path) -> None:
    server = RedisServer(require_redis(), tmp_path, appendonly=False)
    server.start()
    try:
        events: list[str] = []
        manager = DistributedMemoryManager(
            server.url, writer_id="a", on_event=lambda e: events.append(e.kind)
        )
        for i in range(5):
            manager.set("s", f"k{i}", i)
        assert manager.sync("s").success
        server.restart()  # no persistence: the server comes back empty
        result = manager.sync("s")
        assert result.success and result.pushed == 5, result.error
        assert "remote-reset" in events
        assert DistributedMemoryManager(server.url).items("s") == {f"k{i}": i for i in range(5)}
    finally:
        server.stop()


def test_the_same_value_written_on_both_sides_is_not_a_conflict(record_url: str) -> None:
    a, b = _pair(record_url, "remote-wins")
    assert a.items("s") == {} and b.items("s") == {}
    a.set("s", "k", {"same": True})
    b.set("s", "k", {"same": True})
    assert a.sync("s").success
    result = b.sync("s")
    assert result.success and result.conflicts == [] and b.pending("s") == []
    assert open_record_store(record_url).get("s", "k").version == 1  # type: ignore[union-attr]
