"""GarbageCollectionOptimizer: the tuning decision, GC holds, collections, lifecycles."""

from __future__ import annotations

import gc
import logging
import os
import threading
import time

import pytest

from memlens.core.errors import GCError
from memlens.remedies import collection
from memlens.remedies.gc_tuning import (
    CollectionResult,
    GarbageCollectionOptimizer,
    GcMeasurement,
    GcSettings,
    default_candidates,
)
from tests.remedies.helpers import held_by_another_thread, in_forked_child


@pytest.fixture(autouse=True)
def _keep_gc_settings():
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()
    if enabled:
        gc.enable()


def fake(settings: GcSettings, p50: float, p99: float, throughput: float) -> GcMeasurement:
    return GcMeasurement(
        settings, 1000, 1000 / throughput, throughput, p50, p99, p99 * 2, 10, 1e-4, 1e-3, 2e-3, 0.01
    )


def test_a_candidate_that_worsens_p99_is_never_applied() -> None:
    # The published case: higher thresholds, better median, worse tail (4.77 -> 7.63 ms).
    before = gc.get_threshold()
    raised = GcSettings((before[0] * 10, *before[1:]), label="raised")

    def measure(s: GcSettings) -> GcMeasurement:
        if s == raised:
            return fake(s, p50=0.0009, p99=0.00763, throughput=1200)
        return fake(s, p50=0.0011, p99=0.00477, throughput=1000)

    report = GarbageCollectionOptimizer().optimize_gc_settings(candidates=[raised], measure=measure)
    assert not report.applied and report.chosen is None
    assert gc.get_threshold() == before
    assert "p99 got worse" in report.reason and "raised" not in report.reason.split(":")[0]
    data = report.to_dict()
    assert data["baseline"]["latency_p99"] == 0.00477 and data["chosen"] is None


def test_a_candidate_better_on_p99_and_throughput_is_applied() -> None:
    before = gc.get_threshold()
    raised = GcSettings((before[0] * 10, *before[1:]), label="raised")
    tail_only = GcSettings((before[0] * 50, *before[1:]), label="tail only")

    def measure(s: GcSettings) -> GcMeasurement:
        if s == raised:
            return fake(s, 0.0009, 0.0040, 1100)
        if s == tail_only:  # better p99, lower throughput: not enough
            return fake(s, 0.0012, 0.0030, 900)
        return fake(s, 0.0011, 0.0048, 1000)

    opt = GarbageCollectionOptimizer()
    report = opt.optimize_gc_settings(candidates=[raised, tail_only], measure=measure)
    assert report.applied and report.chosen == raised
    assert gc.get_threshold() == raised.thresholds and opt.applied == raised
    opt.restore()
    assert gc.get_threshold() == before


def test_a_candidate_that_wins_only_some_rounds_is_not_trusted() -> None:
    base = GcSettings.current()
    lucky = GcSettings((base.thresholds[0] * 10, *base.thresholds[1:]), label="lucky")
    p99s = iter([0.0030, 0.0030, 0.0045, 0.0060, 0.0060])  # median better, 2 wins of 5

    def measure(s: GcSettings) -> GcMeasurement:
        if s == lucky:
            return fake(s, 0.001, next(p99s), 1200)
        return fake(s, 0.001, 0.00477, 1000)

    report = GarbageCollectionOptimizer().optimize_gc_settings(
        candidates=[lucky], measure=measure, rounds=5
    )
    assert report.candidates[0].latency_p99 < report.baseline.latency_p99 * 0.97
    assert not report.applied and gc.get_threshold() == base.thresholds


def test_gains_within_the_margin_are_not_enough() -> None:
    base = GcSettings.current()
    cand = GcSettings((base.thresholds[0] * 10, *base.thresholds[1:]))

    def measure(s: GcSettings) -> GcMeasurement:
        return fake(s, 0.001, 0.00499 if s == cand else 0.005, 1001 if s == cand else 1000)

    report = GarbageCollectionOptimizer().optimize_gc_settings(
        candidates=[cand], measure=measure, min_gain=0.03
    )
    assert not report.applied


def test_measuring_a_real_workload_restores_the_settings() -> None:
    before = gc.get_threshold()

    class Node:
        def __init__(self, peer: object) -> None:
            self.peer = peer
            self.items = [peer]

    def request() -> None:
        nodes = [Node(None) for _ in range(200)]
        for a, b in zip(nodes, nodes[1:]):
            a.peer, b.peer = b, a  # cycles: the GC has work

    opt = GarbageCollectionOptimizer()
    report = opt.optimize_gc_settings(request, calls=200, rounds=2, apply=False)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    assert report.baseline.calls == 400 and report.baseline.collections > 0
    assert {c.settings.label for c in report.candidates} == {
        s.label for s in default_candidates(GcSettings.current())
    }
    for m in (report.baseline, *report.candidates):
        assert 0 < m.latency_p50 <= m.latency_p99 <= m.latency_max and m.throughput > 0


def test_a_failing_workload_leaves_the_settings_as_they_were() -> None:
    before = gc.get_threshold()

    def broken() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        GarbageCollectionOptimizer().optimize_gc_settings(broken, calls=1, rounds=1)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_bad_requests_raise_gc_error() -> None:
    opt = GarbageCollectionOptimizer()
    with pytest.raises(GCError, match="needs your workload"):
        opt.optimize_gc_settings()
    with pytest.raises(GCError, match="thresholds"):
        opt.apply(GcSettings((-1, 10, 10)))
    with pytest.raises(GCError, match="disables collection"):
        opt.apply(GcSettings((0, 10, 10)))
    with pytest.raises(GCError, match="invalid generation"):
        opt.perform_optimized_collection(7)


def test_disable_gc_temporarily_nests_and_reenables_on_error() -> None:
    opt = GarbageCollectionOptimizer()
    gc.enable()
    with pytest.raises(ValueError), opt.disable_gc_temporarily():
        assert not gc.isenabled()
        with opt.disable_gc_temporarily():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer block still holds it
        raise ValueError
    assert gc.isenabled()
    gc.disable()
    with opt.disable_gc_temporarily():
        pass
    assert not gc.isenabled()  # it was off before: stays off


def test_disable_gc_temporarily_across_threads(caplog: pytest.LogCaptureFixture) -> None:
    opt = GarbageCollectionOptimizer()
    gc.enable()
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with opt.disable_gc_temporarily(warn_after=0.05):
            inside.set()
            leave.wait()

    t = threading.Thread(target=hold)
    held_before = opt.long_holds
    with caplog.at_level(logging.WARNING, logger="memlens.remedies"):
        t.start()
        inside.wait()
        with opt.disable_gc_temporarily():
            pass
        assert not gc.isenabled()  # the other thread still holds it
        deadline = time.monotonic() + 5
        while opt.long_holds == held_before and time.monotonic() < deadline:
            time.sleep(0.01)
        leave.set()
        t.join()
    assert gc.isenabled()
    assert opt.long_holds == held_before + 1
    assert any("disabled for" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_hold_by_a_thread_that_did_not_survive_fork_ends_in_the_child() -> None:
    opt = GarbageCollectionOptimizer()
    gc.enable()
    with held_by_another_thread(lambda: opt.disable_gc_temporarily(warn_after=60)):
        assert not gc.isenabled()
        assert in_forked_child(gc.isenabled)


def test_optimized_collection_runs_callbacks_and_reports_what_it_freed() -> None:
    opt = GarbageCollectionOptimizer()
    calls = []
    unregister = opt.register_cleanup_callback(lambda: calls.append("cleanup"))
    opt.register_cleanup_callback(lambda: 1 / 0)  # a broken one is counted, not raised

    class Node:
        def __init__(self) -> None:
            self.me = self
            self.payload = bytearray(10_000)

    gc.disable()
    for _ in range(500):
        Node()
    result = opt.perform_optimized_collection()
    assert isinstance(result, CollectionResult)
    assert calls == ["cleanup"] and result.callbacks_run == 2 and result.callback_errors == 1
    assert result.collected_objects >= 500 and result.generations == (len(gc.get_count()) - 1,)
    if result.reclaimed.allocator is not None:
        assert result.reclaimed.allocator >= 500 * 10_000 * 0.9
    unregister()
    early = opt.perform_optimized_collection(enough=0)
    assert early.generations == (0,) and early.callbacks_run == 1


def test_objects_that_outlive_their_expected_lifetime_are_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    opt = GarbageCollectionOptimizer(max_tracked=3)

    class Request:
        pass

    short, long_lived = Request(), Request()
    opt.monitor_object_lifecycle(short, "request", expected_lifetime=60)
    ref = opt.monitor_object_lifecycle(long_lived, "session", expected_lifetime=0.0)
    assert ref() is long_lived
    del short
    gc.collect()
    with caplog.at_level(logging.WARNING, logger="memlens.remedies"):
        overdue = opt.overdue_objects()
        opt.overdue_objects()  # logged once only
    assert [r.name for r in overdue] == ["session"]
    assert sum("still alive" in r.getMessage() for r in caplog.records) == 1
    stats = opt.lifecycle_stats()
    assert stats["request"]["finished"] == 1 and stats["session"]["overdue"] == 1
    with pytest.raises(GCError, match="cannot be weakly referenced"):
        opt.monitor_object_lifecycle({"a": 1}, "dict")
    keep = [Request() for _ in range(5)]
    for r in keep:
        opt.monitor_object_lifecycle(r, "many")
    assert opt.lifecycle_dropped >= 3  # bounded


def test_freeze_after_preload() -> None:
    try:
        frozen = GarbageCollectionOptimizer.freeze_after_preload()
        assert frozen > 0 and gc.get_freeze_count() == frozen
        # The short-pause collector now counts only objects allocated after the freeze.
        assert collection._clock.scanned_blocks() < collection._clock.frozen_blocks
    finally:
        collection.thaw()  # the rest of the suite runs on an unfrozen heap
