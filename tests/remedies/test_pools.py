"""MemoryPool and ResourceManager: exhaustion, leaks, size classes, threads, fork."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from memlens.core.errors import MemlensError, PoolError, ResourceError
from memlens.remedies import registry
from memlens.remedies.pools import Buffer, MemoryPool, ResourceManager
from tests.remedies.helpers import held_by_another_thread, in_forked_child


class Conn:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_put_get_and_the_size_bound() -> None:
    pool = MemoryPool(max_size=2, name="objects")
    a, b, c = Conn(), Conn(), Conn()
    assert pool.put("conn", a) and pool.put("conn", b)
    assert not pool.put("conn", c)  # full: dropped, counted
    assert pool.get("conn") is b
    assert pool.get("conn") is a
    assert pool.get("conn") is None and pool.get("other", "dflt") == "dflt"
    s = pool.get_stats()
    assert (s["hits"], s["misses"], s["discarded"], s["borrowed"]) == (2, 2, 1, 2)


def test_an_exhausted_pool_raises_and_names_the_borrower() -> None:
    pool = MemoryPool(name="db")
    pool.register_factory("conn", Conn, limit=2)
    first = pool.get("conn")
    second = pool.get("conn")
    with pytest.raises(PoolError, match="exhausted: all 2 'conn' objects") as info:
        pool.get("conn", timeout=0.05)
    assert "test_pools.py" in str(info.value)  # the line that borrowed the oldest
    assert isinstance(info.value, MemlensError)
    assert pool.get_stats()["exhausted"] == 1
    # A waiter gets the object as soon as it comes back.
    got = []
    waiter = threading.Thread(target=lambda: got.append(pool.get("conn", timeout=5)))
    waiter.start()
    time.sleep(0.05)
    pool.put("conn", first)
    waiter.join()
    assert got == [first]
    pool.put("conn", second)
    with pool.acquire("conn") as conn:
        assert isinstance(conn, Conn)
    assert pool.get_stats()["created"] == 2


def test_a_borrowed_object_dropped_unreturned_is_a_pool_leak() -> None:
    pool = MemoryPool(name="leaky", leak_after=3600)
    pool.register_factory("conn", Conn, limit=1)
    conn = pool.get("conn")  # borrowed here and never returned
    del conn
    gc.collect()
    leaks = pool.leaks()
    assert len(leaks) == 1 and not leaks[0].alive
    assert leaks[0].kind == "conn" and "test_pools.py" in leaks[0].site
    assert pool.get_stats()["leaked"] == 1
    assert isinstance(pool.get("conn"), Conn)  # the lost one's place is refilled


def test_objects_held_too_long_are_reported_alive() -> None:
    pool = MemoryPool(name="slow", leak_after=0.0)
    pool.register_factory("conn", Conn)
    held = pool.get("conn")
    leaks = pool.leaks()
    assert [(leak.kind, leak.alive) for leak in leaks] == [("conn", True)]
    pool.put("conn", held)
    assert pool.leaks() == []


def test_buffers_by_size_class() -> None:
    pool = MemoryPool(name="buffers", size_classes=(1024, 4096), max_idle_bytes=5000)
    buf = pool.get_buffer(1000)
    assert isinstance(buf, Buffer) and len(buf) == 1024
    assert pool.put_buffer(buf)
    assert pool.get_buffer(900) is buf  # reused
    big = pool.get_buffer(4000)
    assert len(big) == 4096
    assert pool.put_buffer(big) and not pool.put_buffer(buf)  # over max_idle_bytes
    assert pool.get_stats()["idle_bytes"] == 4096
    with pytest.raises(PoolError, match="above the largest size class"):
        pool.get_buffer(10_000)
    with pytest.raises(PoolError, match="from get_buffer"):
        pool.put_buffer(bytearray(1024))  # type: ignore[arg-type]
    pool.close()
    with pytest.raises(PoolError, match="closed"):
        pool.get_buffer(10)


def test_pool_from_many_threads_stays_consistent() -> None:
    pool = MemoryPool(name="threads")
    pool.register_factory("conn", Conn, limit=4)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(300):
                with pool.acquire("conn", timeout=10):
                    pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = pool.get_stats()
    assert not errors and s["created"] <= 4 and s["borrowed"] == 0
    assert s["hits"] + s["created"] == 2400


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_pool_usable_in_a_forked_child_while_a_thread_held_its_lock() -> None:
    pool = MemoryPool(name="fork")
    pool.put("conn", Conn())
    with held_by_another_thread(lambda: pool._lock):
        assert in_forked_child(lambda: isinstance(pool.get("conn"), Conn))


def test_resource_manager_acquire_stats_and_cleanup() -> None:
    mgr = ResourceManager("db")
    conn = Conn()
    mgr.register_resource("primary", conn, Conn.close)
    with pytest.raises(ResourceError, match="already registered"):
        mgr.register_resource("primary", Conn())
    with mgr.acquire_resource("primary", "database_connection") as got:
        assert got is conn
        assert mgr.get_resource_stats("primary")["in_use"]
        with (
            pytest.raises(ResourceError, match="already held by this thread"),
            mgr.acquire_resource("primary"),
        ):
            pass
    with pytest.raises(ValueError), mgr.acquire_resource("primary", "query"):
        raise ValueError("query failed")
    s = mgr.get_resource_stats("primary")
    assert s["acquisitions"] == 2 and s["failures"] == 1 and not s["in_use"]
    assert s["by_kind"] == {"database_connection": 1, "query": 1}
    assert set(mgr.get_resource_stats()) == {"primary"}
    mgr.unregister_resource("primary")
    assert conn.closed
    with pytest.raises(ResourceError, match="no resource 'primary'"):
        mgr.get_resource_stats("primary")


def test_a_busy_resource_times_out() -> None:
    mgr = ResourceManager("busy")
    mgr.register_resource("model", object())
    with held_by_another_thread(lambda: mgr.acquire_resource("model")):
        with (
            pytest.raises(ResourceError, match="stayed busy"),
            mgr.acquire_resource("model", timeout=0.05),
        ):
            pass
        assert mgr.get_resource_stats("model")["timeouts"] == 1
        mgr.hold_warning = 0.0
        assert [name for name, _ in mgr.long_holds()] == ["model"]
    mgr.close()


def test_memory_error_in_a_managed_block_propagates() -> None:
    mgr = ResourceManager("oom")
    mgr.register_resource("r", object())
    with pytest.raises(MemoryError), mgr.acquire_resource("r"):
        raise MemoryError
    assert mgr.get_resource_stats("r")["failures"] == 1
    assert not mgr.get_resource_stats("r")["in_use"]  # released
    mgr.close()


def test_a_resource_never_released_is_cleaned_up_with_a_warning() -> None:
    # In a real interpreter: the manager is dropped at exit without unregister.
    code = textwrap.dedent(
        """
        import warnings
        warnings.simplefilter("always")
        from memlens.remedies.pools import ResourceManager
        mgr = ResourceManager("app")
        class Conn:
            def close(self):
                print("closed", flush=True)
        mgr.register_resource("cache_conn", Conn(), lambda c: c.close())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "closed" in out.stdout
    assert "never unregistered" in out.stderr and "cache_conn" in out.stderr


def test_pools_and_managers_export_their_counters() -> None:
    pool = MemoryPool(name="exported")
    pool.put("x", Conn())
    mgr = ResourceManager("exported-res")
    seen = {(k, n): m for k, n, m in registry.snapshot()}
    assert seen[("pool", "exported")]["idle"] == 1
    assert {m.key for m in registry.METRICS["pool"]} == set(seen[("pool", "exported")])
    assert {m.key for m in registry.METRICS["resources"]} == set(
        seen[("resources", "exported-res")]
    )
    mgr.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_resource_held_by_a_thread_that_did_not_survive_fork_is_free_in_the_child() -> None:
    mgr = ResourceManager("fork")
    mgr.register_resource("model", object())

    def acquire_in_child() -> bool:
        with mgr.acquire_resource("model", timeout=2):
            return True

    with held_by_another_thread(lambda: mgr.acquire_resource("model")):
        assert in_forked_child(acquire_in_child)
    mgr.close()
