"""The recovery ladder: order, measured steps, stopping at the target, triggers."""

from __future__ import annotations

import functools
import gc
import threading

import pytest

from memlens.core.errors import ConfigError
from memlens.remedies import registry
from memlens.remedies.allocator import allocator_stats
from memlens.remedies.caches import memoize
from memlens.remedies.ladder import (
    CLEAR_CACHES,
    COMPRESS_CONTEXT,
    GC_COLLECT,
    MALLOC_TRIM,
    RECYCLE,
    LadderRun,
    RecoveryLadder,
)
from memlens.remedies.readings import MemoryReading, read_memory

MB = 1024 * 1024


class FakeMemory:
    """RSS that each step lowers by a known amount (a simulated service)."""

    def __init__(self, rss: int) -> None:
        self.rss = rss

    def __call__(self) -> MemoryReading:
        return MemoryReading(self.rss, None, None, None)


def test_steps_run_in_order_of_cost_and_stop_below_the_target() -> None:
    mem = FakeMemory(900 * MB)
    ladder = RecoveryLadder(reader=mem, min_interval=0)
    order = []

    def clear() -> int:
        order.append("cache")
        mem.rss -= 100 * MB
        return 3

    def compress() -> int:
        order.append("context")
        mem.rss -= 250 * MB
        return 1200

    ladder.register_cache(clear)
    ladder.register_context_compressor(compress)
    ladder.set_recycle_hook(lambda: order.append("recycle"))
    assert ladder.steps == [CLEAR_CACHES, COMPRESS_CONTEXT, GC_COLLECT, MALLOC_TRIM, RECYCLE]
    run = ladder.run("test", target_bytes=600 * MB)
    assert order == ["cache", "context"]  # stopped: 550 MB < 600 MB after compressing
    assert [s.step for s in run.steps] == [CLEAR_CACHES, COMPRESS_CONTEXT]
    assert [s.reclaimed.rss for s in run.steps] == [100 * MB, 250 * MB]
    assert "below the target" in run.outcome and "compress context" in run.outcome
    assert run.reclaimed is not None and run.reclaimed.rss == 350 * MB
    assert ladder.history[-1] is run and isinstance(run.to_dict()["steps"], list)
    assert "350.0 MiB" in run.describe() or "350 MiB" in run.describe()


def test_recycle_is_the_last_resort_and_needs_a_target() -> None:
    mem = FakeMemory(900 * MB)
    ladder = RecoveryLadder(reader=mem, min_interval=0)
    recycled = []
    ladder.set_recycle_hook(lambda: recycled.append(1) or "bye")
    run = ladder.run("no target")
    assert recycled == [] and "no target" in run.outcome
    assert [s.ran for s in run.steps if s.step == RECYCLE] == [False]
    run = ladder.run("stuck", target_bytes=100 * MB)
    assert recycled == [1] and run.steps[-1].step == RECYCLE and run.steps[-1].detail == "bye"
    assert "recycle requested" in run.outcome
    skipped = {s.step: s.detail for s in run.steps if not s.ran}
    assert "no context compressor" in skipped[COMPRESS_CONTEXT]


def test_a_failing_step_is_reported_and_the_ladder_goes_on() -> None:
    mem = FakeMemory(900 * MB)
    ladder = RecoveryLadder(reader=mem, min_interval=0)

    def broken() -> None:
        raise RuntimeError("compressor down")

    ladder.register_context_compressor(broken)
    run = ladder.run("test", target_bytes=MB)
    failed = [s for s in run.steps if s.error]
    assert [s.step for s in failed] == [COMPRESS_CONTEXT] and "compressor down" in failed[0].error
    assert GC_COLLECT in [s.step for s in run.steps if s.ran]


def test_custom_steps_and_registration_errors() -> None:
    ladder = RecoveryLadder(reader=FakeMemory(MB), min_interval=0)
    ladder.add_step("drop sessions", lambda: "dropped 4", cost=15)
    assert ladder.steps.index("drop sessions") == 1
    with pytest.raises(ConfigError, match="exists already"):
        ladder.add_step("drop sessions", lambda: None, cost=1)
    ladder.remove_step("drop sessions")
    assert "drop sessions" not in ladder.steps
    with pytest.raises(ConfigError, match="cannot clear"):
        ladder.register_cache(42)
    with pytest.raises(ConfigError):
        RecoveryLadder(min_interval=-1)
    run = ladder.run("already fine", target_bytes=10 * MB)
    assert run.steps == [] and "nothing to do" in run.outcome


def test_clearing_a_bloated_cache_reclaims_its_bytes() -> None:
    @memoize(max_entries=None, max_bytes=None, sizeof=len)
    def render(n: int) -> bytes:
        return bytes(4096) + n.to_bytes(8, "little")

    @functools.cache
    def legacy(n: int) -> bytes:
        return bytes(4096) + n.to_bytes(8, "little")

    for i in range(10_000):
        render(i)
        legacy(i)
    ladder = RecoveryLadder(min_interval=0)
    unregister = ladder.register_cache(legacy)
    run = ladder.run("bloat")
    unregister()
    first = run.steps[0]
    assert first.step == CLEAR_CACHES and first.ran
    assert render.stats().entries == 0 and legacy.cache_info().currsize == 0
    if allocator_stats() is not None:
        assert first.reclaimed.allocator is not None and first.reclaimed.allocator >= 70 * MB
    assert all(s.duration >= 0 for s in run.steps)


def test_trigger_runs_on_a_thread_once_per_interval() -> None:
    started = threading.Event()
    release = threading.Event()
    ladder = RecoveryLadder(reader=read_memory, min_interval=3600)

    def slow() -> None:
        started.set()
        release.wait(10)

    ladder.register_context_compressor(slow)
    assert ladder.trigger("first")
    started.wait(5)
    assert ladder.running
    assert not ladder.trigger("while running")  # one at a time
    release.set()
    assert ladder.wait(10)
    assert not ladder.trigger("too soon")  # cooldown
    assert ladder.runs == 1 and ladder.suppressed == 2
    assert [r.reason for r in ladder.history] == ["first"]
    assert ladder.history[0].steps[1].step == COMPRESS_CONTEXT
    exported = {(k, n): m for k, n, m in registry.snapshot()}[("recovery", "recovery")]
    assert exported["runs"] >= 1 and {m.key for m in registry.METRICS["recovery"]} == set(exported)


def test_gc_step_collects_cycles() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self
            self.blob = bytearray(50_000)

    gc.disable()
    try:
        for _ in range(400):
            Node()
        run = RecoveryLadder(min_interval=0).run("cycles")
    finally:
        gc.enable()
    step = next(s for s in run.steps if s.step == GC_COLLECT)
    assert step.ran and int(step.detail.split()[0]) >= 400
    if step.reclaimed.allocator is not None:
        assert step.reclaimed.allocator >= 400 * 50_000 * 0.9
    assert step.longest_hold <= step.duration


def test_history_is_bounded() -> None:
    ladder = RecoveryLadder(reader=FakeMemory(MB), min_interval=0, history=2)
    for i in range(3):
        ladder.run(f"r{i}", target_bytes=2 * MB)
    assert [r.reason for r in ladder.history] == ["r1", "r2"]
    assert isinstance(ladder.history[0], LadderRun)


def test_context_memory_registers_its_compaction() -> None:
    from memlens.context.memory import ContextMemory

    memory = ContextMemory(4_000, keep_last_turns=0)
    memory.add_system("You are a careful assistant.")
    for i in range(60):
        memory.add_message("user", f"Question {i}: " + "please look at the logs again " * 8)
        memory.add_message("assistant", f"Answer {i}: " + "the service restarted cleanly " * 8)
    before = memory.tokens
    ladder = RecoveryLadder(reader=FakeMemory(900 * MB), min_interval=0)
    ladder.register_context_compressor(lambda: memory.cleanup(aggressive=True, reason="recovery"))
    run = ladder.run("context", target_bytes=MB)
    step = next(s for s in run.steps if s.step == COMPRESS_CONTEXT)
    assert step.ran and "tokens saved" in step.detail
    assert memory.tokens < before
