"""memory_efficient_context and @monitor_function_memory: peak, retained, events, errors."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

import pytest

from memlens.remedies.blocks import (
    BlockMemory,
    FunctionMemoryStats,
    memory_efficient_context,
    monitor_function_memory,
)
from memlens.service import MemoryOperationCompleted, MemoryOperationStarted, Monitor

MB = 1024 * 1024


def test_peak_and_retained_of_a_block() -> None:
    kept = []
    with memory_efficient_context("load") as mem:
        temp = bytearray(60 * MB)  # peak, then freed
        temp[::4096] = b"x" * len(temp[::4096])  # touch every page
        time.sleep(0.05)  # the sampler sees it
        del temp
        kept.append(bytearray(20 * MB))
        kept[0][::4096] = b"y" * len(kept[0][::4096])
    assert isinstance(mem, BlockMemory) and mem.error is None
    assert mem.peak >= 55 * MB
    # RSS may not grow for memory the allocator already had resident: use its figure.
    assert 15 * MB <= mem.retained_best < 40 * MB
    assert "peak" in mem.describe() and mem.to_dict()["name"] == "load"


def test_a_memory_error_inside_a_block_is_reported_and_reraised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="memlens.remedies"),
        pytest.raises(MemoryError),
        memory_efficient_context("oom") as mem,
    ):
        raise MemoryError
    assert mem.error == "MemoryError"
    assert any("MemoryError in oom" in r.getMessage() for r in caplog.records)


def test_other_errors_are_recorded_and_propagate() -> None:
    with pytest.raises(KeyError), memory_efficient_context("bad", collect=False) as mem:
        raise KeyError("k")
    assert mem.error is not None and mem.error.startswith("KeyError")


def test_decorator_on_sync_and_async_functions(caplog: pytest.LogCaptureFixture) -> None:
    store = []

    @monitor_function_memory(warn_retained=5 * MB)
    def grow(n: int) -> int:
        store.append(bytearray(n))
        store[-1][::4096] = b"z" * len(store[-1][::4096])
        return n

    @monitor_function_memory
    async def fetch() -> str:
        await asyncio.sleep(0)
        return "ok"

    with caplog.at_level(logging.WARNING, logger="memlens.remedies"):
        assert grow(10 * MB) == 10 * MB
    assert asyncio.run(fetch()) == "ok"
    stats = grow.memory_stats()  # type: ignore[attr-defined]
    assert isinstance(stats, FunctionMemoryStats) and stats.calls == 1
    assert stats.retained_total >= 9 * MB and stats.last is not None
    assert any("grow" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert fetch.memory_stats().calls == 1  # type: ignore[attr-defined]
    assert grow.__name__ == "grow"


def test_decorated_function_errors_are_counted() -> None:
    @monitor_function_memory
    def boom() -> None:
        raise MemoryError

    with pytest.raises(MemoryError):
        boom()
    assert boom.memory_stats().errors == 1  # type: ignore[attr-defined]


def test_blocks_emit_the_monitors_operation_events() -> None:
    got: list[object] = []
    monitor = Monitor.from_config(mode="production", http_enabled=False, persist_history=False)
    monitor.start(thread=False)
    try:
        monitor.subscribe(got.append, [MemoryOperationStarted, MemoryOperationCompleted])
        with memory_efficient_context("batch", monitor=monitor):
            pass
        with memory_efficient_context("found"):  # the running monitor, found by itself
            pass
        monitor.events.flush()
    finally:
        monitor.stop()
    assert [type(e).__name__ for e in got] == [
        "MemoryOperationStarted",
        "MemoryOperationCompleted",
    ] * 2
    assert [e.operation for e in got[1::2]] == ["batch", "found"]  # type: ignore[attr-defined]


def test_blocks_in_threads_and_in_a_forked_child() -> None:
    results: list[BlockMemory] = []

    def work() -> None:
        with memory_efficient_context("thread", collect=False) as mem:
            time.sleep(0.01)
        results.append(mem)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r.rss_peak >= r.rss_before for r in results)
    if not hasattr(os, "fork"):
        return
    with memory_efficient_context("around fork", collect=False):
        pid = os.fork()
        if pid == 0:
            try:
                with memory_efficient_context("child") as child:
                    buf = bytearray(30 * MB)
                    buf[::4096] = b"c" * len(buf[::4096])
                os._exit(0 if child.retained_best >= 25 * MB else 1)
            finally:
                os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
