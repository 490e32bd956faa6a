"""Components and growing sites from real tracemalloc snapshots; GC statistics."""

from __future__ import annotations

import gc
import importlib
import sys
from pathlib import Path

import pytest

from memlens.core.clock import ManualClock
from memlens.core.config import Config
from memlens.core.errors import NotFoundError
from memlens.service import LeakSuspected, Monitor
from tests.service.helpers import MB

LEAKY = """
_kept = []

def handle_request(n):
    _kept.append(bytearray(n))   # the leak: never released

def steady(n):
    scratch = [bytearray(n // 10) for _ in range(10)]
    return len(scratch)
"""


@pytest.fixture
def leaky_module(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "leakyapp").mkdir()
    (tmp_path / "leakyapp" / "__init__.py").write_text("")
    (tmp_path / "leakyapp" / "handlers.py").write_text(LEAKY)
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("leakyapp.handlers")
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("leakyapp.handlers", "leakyapp"):
            sys.modules.pop(name, None)


def test_component_leak_names_the_growing_site(leaky_module) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock()
    # Synthetic RSS keeps the process series flat, so the alert must come from the component.
    mon = Monitor(
        Config(
            mode="advanced",
            # exact tracemalloc (advanced samples by default; see the sampler test below)
            enabled_backends=("system", "gc", "smaps", "tracemalloc"),
            persist_history=False,
            trace_depth=8,
            memory_critical_threshold_mb=4000,
        ),
        clock=clock,
        readers=[lambda: {"rss": 100 * MB}],
    )
    mon.register_component("handlers", "leakyapp")
    events: list[LeakSuspected] = []
    mon.subscribe(events.append, [LeakSuspected])
    mon.start(thread=False)
    try:
        assert mon.heapwatch.tracing
        for _ in range(25):  # 25 simulated minutes, 1 MB retained per minute
            for _ in range(60):
                leaky_module.handle_request(1024 * 1024 // 60)
                leaky_module.steady(10_000)
            clock.advance(60)
            mon.sample_now()
        leaks = mon.get_active_leaks()
        assert [leak["component"] for leak in leaks] == ["handlers"]
        (leak,) = leaks
        assert 0.7 < leak["growth_rate_mb_per_min"] < 1.3
        top = leak["sites"][0]
        assert top["location"].endswith("leakyapp/handlers.py:5")
        assert top["function"] == "handle_request" and top["component"] == "handlers"
        assert "handlers.py:5" in leak["recommendation"]
        usage = mon.get_component_memory_usage("handlers")
        assert usage.current > 20 * MB and usage.growth > 15 * MB and usage.peak >= usage.current
        assert set(mon.get_component_memory_usage()) == {"handlers"}  # type: ignore[arg-type]
        with pytest.raises(NotFoundError, match="handlers"):
            mon.get_component_memory_usage("nope")
        assert mon.events.flush(10)
        assert [e.leak_id for e in events] == [leak["id"]]
        sites = mon.top_sites(3)
        assert sites and sites[0].location.endswith("handlers.py:5")
    finally:
        mon.stop()
    import tracemalloc

    assert not tracemalloc.is_tracing()  # the monitor stops what it started


def test_advanced_mode_samples_sites_and_exports_them(leaky_module, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import functools

    import memlens.service.components as components
    from memlens.heap.native_ext import load_extension
    from memlens.heap.sampler import AllocationSampler
    from memlens.service.metrics import collect
    from memlens.service.readout import debug_snapshot

    if load_extension("_sampler") is None:
        pytest.skip("memlens._sampler was not built")
    # A fixed interval: the automatic one's cost governor follows the process's CPU
    # history, which differs between this test alone and after a thousand others (it
    # failed once in a full run). The automatic interval has its own tests in
    # tests/heap/test_sampler_blocks.py; this one checks the monitor's use of samples.
    monkeypatch.setattr(
        components, "AllocationSampler", functools.partial(AllocationSampler, interval=64 * 1024)
    )
    assert components._shared is None  # no monitor of an earlier test still holds one
    clock = ManualClock()
    mon = Monitor(
        Config(mode="advanced", persist_history=False, memory_critical_threshold_mb=4000),
        clock=clock,
        readers=[lambda: {"rss": 100 * MB}],
    )
    mon.register_component("handlers", "leakyapp")
    mon.start(thread=False)
    try:
        assert mon.heapwatch.source == "sampler" and not mon.heapwatch.tracing
        for _ in range(25):  # 25 simulated minutes, 4 MB retained per minute
            for _ in range(60):
                leaky_module.handle_request(4 * 1024 * 1024 // 60)
                leaky_module.steady(10_000)
            clock.advance(60)
            mon.sample_now()
        (leak,) = mon.get_active_leaks()
        assert leak["component"] == "handlers"
        assert 2.8 < leak["growth_rate_mb_per_min"] < 5.2  # an estimate of 4 MB/min
        assert leak["sites"][0]["location"].endswith("leakyapp/handlers.py:5")
        usage = mon.get_component_memory_usage("handlers")
        assert 70 * MB < usage.current < 130 * MB  # 100 MB retained
        families = {f.name: f for f in collect(mon)}
        site_samples = families["memlens_allocation_site_bytes"].samples
        assert any(
            labels["site"].endswith("handlers.py:5") and labels["source"] == "sampler"
            for _, labels, _ in site_samples
        )
        readout = debug_snapshot(mon)
        assert readout["sites_source"] == "sampler" and readout["components_tracked"]
    finally:
        mon.stop()
    assert mon.heapwatch.source == "off"


def test_components_without_tracemalloc_stay_zero() -> None:
    mon = Monitor(Config(mode="production", persist_history=False, components={"api": "myapp.api"}))
    mon.start(thread=False)
    usage = mon.get_component_memory_usage()
    assert isinstance(usage, dict) and usage["api"].current == 0
    assert not mon.heapwatch.tracing
    mon.stop()


def test_gc_stats_and_forced_collection() -> None:
    mon = Monitor(Config(mode="production", persist_history=False)).start(thread=False)
    try:

        class Node:
            def __init__(self) -> None:
                self.other: object = None
                self.payload = bytearray(1000)

        gc.disable()  # keep the automatic collector from freeing them first
        try:
            for _ in range(2000):  # reference cycles only the GC can free
                a, b = Node(), Node()
                a.other, b.other = b, a
            del a, b
            result = mon.force_garbage_collection()
        finally:
            gc.enable()
        assert result.collected_objects >= 4000  # both nodes and their __dict__s, at least
        assert result.generation == 2 and result.pause_seconds > 0
        assert result.rss_before > 0 and result.bytes_freed >= 0
        stats = {g.generation: g for g in mon.gc_stats()}
        assert len(stats) == len(gc.get_count())
        assert stats[2].collections >= 1 and stats[2].collected >= 4000
        assert sum(stats[2].pause_histogram.values()) == stats[2].collections
        assert result.to_dict()["collected_objects"] == result.collected_objects
        with pytest.raises(Exception, match="invalid generation"):
            mon.force_garbage_collection(7)
    finally:
        mon.stop()


def test_mode_off_starts_nothing() -> None:
    mon = Monitor(Config(mode="off", persist_history=False)).start()
    assert not mon.running and mon.samples == 0
    assert mon.health().status == "warning"
    mon.stop()


def test_monitor_context_manager_runs_threads_and_stops_them() -> None:
    import threading

    from memlens.service import monitor

    with monitor(mode="production", persist_history=False, sampling_interval=0.05) as mon:
        assert mon.running
        names = {t.name for t in threading.enumerate()}
        assert {"memlens-monitor", "memlens-events"} <= names
    assert not mon.running
    assert not any(
        t.name in ("memlens-monitor", "memlens-events") and t.is_alive()
        for t in threading.enumerate()
    )


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_forked_child_defers_its_first_snapshot() -> None:
    import os

    clock = ManualClock()
    mon = Monitor(
        Config(mode="debug", persist_history=False), clock=clock, readers=[lambda: {"rss": MB}]
    )
    mon.start(thread=False)
    try:
        # start() hands its first snapshot to the worker; on a big heap it may still run
        assert mon.heapwatch.wait_background(timeout=120)
        mon.sample_now()
        assert mon.heapwatch.snapshots == 1  # the parent snapshots at once
        pid = os.fork()
        if pid == 0:  # the child: no snapshot until one interval has passed
            code, before = 0, mon.heapwatch.snapshots
            mon.sample_now()
            code |= 1 if mon.heapwatch.snapshots != before else 0
            clock.advance(mon.config.effective_snapshot_interval + 1)
            mon.sample_now()
            code |= 2 if mon.heapwatch.snapshots != before + 1 else 0
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        mon.stop()


def test_the_standard_monitor_runs_its_sampler_on_the_monitor_budget() -> None:
    from memlens.heap.native_ext import load_extension
    from memlens.service.components import MONITOR_SAMPLER_BUDGET

    if load_extension("_sampler") is None:
        pytest.skip("memlens._sampler was not built")
    mon = Monitor(Config(mode="standard", persist_history=False)).start(thread=False)
    try:
        sampler = mon.heapwatch.sampler
        assert sampler is not None and sampler.running
        assert sampler.stats()["budget"] == pytest.approx(MONITOR_SAMPLER_BUDGET)
    finally:
        mon.stop()


def test_the_monitors_sampler_budget_is_a_setting() -> None:
    from memlens.core.errors import ConfigError
    from memlens.heap.native_ext import load_extension
    from memlens.service.components import MONITOR_SAMPLER_BUDGET

    assert Config().sampler_budget == MONITOR_SAMPLER_BUDGET
    for bad in (0, -0.01, 0.6, float("nan"), "1%"):
        with pytest.raises(ConfigError, match="sampler_budget"):
            Config(sampler_budget=bad)  # type: ignore[arg-type]
    if load_extension("_sampler") is None:
        pytest.skip("memlens._sampler was not built")
    cfg = Config(mode="standard", persist_history=False, sampler_budget=0.005)
    mon = Monitor(cfg).start(thread=False)
    try:
        sampler = mon.heapwatch.sampler
        assert sampler is not None and sampler.running
        assert sampler.stats()["budget"] == pytest.approx(0.005)
    finally:
        mon.stop()
