"""The short-pause collector: what it scans, what it skips and why, freezing and thawing.

No test decides on a measured time: budgets are either huge (the full pass always
fits) or tiny (it never does), so only the decision logic is under test.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from memlens.core.errors import ConfigError
from memlens.remedies import collection
from memlens.remedies.collection import ShortPauseCollector, freeze_long_lived, thaw
from memlens.remedies.ladder import GC_COLLECT, RecoveryLadder


class Node:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def no_auto_gc() -> Iterator[None]:
    """Only the collections the test asks for (an automatic one would blur the result)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def old_garbage(n: int = 200) -> list[weakref.ref[Node]]:
    """Cycles moved past the young generations, then dropped: only a full pass frees them."""
    nodes = [Node() for _ in range(n)]
    gc.collect(1)  # the survivors of generation 1 move to the oldest generation
    refs = [weakref.ref(x) for x in nodes]
    del nodes
    return refs


def young_garbage(n: int = 200) -> list[weakref.ref[Node]]:
    nodes = [Node() for _ in range(n)]
    refs = [weakref.ref(x) for x in nodes]
    del nodes
    return refs


def alive(refs: list[weakref.ref[Node]]) -> int:
    return sum(r() is not None for r in refs)


def test_young_garbage_is_collected_and_a_long_full_pass_is_skipped(no_auto_gc: None) -> None:
    old, young = old_garbage(), young_garbage()
    result = ShortPauseCollector(max_pause=1e-12).collect()
    assert alive(young) == 0 and alive(old) == 200  # the full pass would not fit
    assert [p.generation for p in result.passes] == [0, 1] and not result.full
    assert result.collected >= 200 and result.predicted_full_pause > 1e-12
    assert "freeze_long_lived()" in result.skipped and "full pass skipped" in result.describe()
    result = ShortPauseCollector(max_pause=None).collect()
    assert alive(old) == 0 and result.full and [p.generation for p in result.passes] == [0, 1, 2]
    assert result.skipped == "" and result.longest_pause == max(p.pause for p in result.passes)


def test_a_pass_that_fits_the_budget_runs(no_auto_gc: None) -> None:
    old = old_garbage()
    result = ShortPauseCollector(max_pause=3600.0).collect()
    assert result.full and alive(old) == 0 and result.collected >= 200
    assert result.to_dict()["collected"] == result.collected


def test_stop_ends_after_the_young_generations(no_auto_gc: None) -> None:
    old = old_garbage()
    result = ShortPauseCollector(max_pause=None).collect(stop=lambda: True)
    assert [p.generation for p in result.passes] == [0] and alive(old) == 200
    assert result.skipped == "no longer needed"


def test_freezing_the_long_lived_heap_shrinks_what_a_full_pass_scans(no_auto_gc: None) -> None:
    keep = [Node() for _ in range(50_000)]  # the long-lived heap
    unfrozen = collection._clock.scanned_blocks()
    try:
        freeze_long_lived()
        frozen = collection._clock.scanned_blocks()
        assert frozen < unfrozen / 10  # the prediction now counts only newer objects
        old = old_garbage()
        # Cycles made after the freeze are found; the frozen heap is not scanned.
        result = ShortPauseCollector(max_pause=None, refreeze=True).collect()
        assert alive(old) == 0 and result.refrozen
        frozen_cycle = weakref.ref(keep[0])
        keep.clear()  # frozen cycles stay until thawed
        gc.collect()
        assert frozen_cycle() is not None
    finally:
        thaw()
    assert frozen_cycle() is None and gc.get_freeze_count() == 0
    assert collection._clock.frozen_blocks == 0


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="max_pause"):
        ShortPauseCollector(max_pause=0)
    with pytest.raises(ConfigError, match="gc_max_pause"):
        RecoveryLadder(gc_max_pause=-1)


def test_the_ladder_gc_step_keeps_to_its_budget(no_auto_gc: None) -> None:
    old = old_garbage()
    run = RecoveryLadder(min_interval=0, gc_max_pause=1e-12).run("tight")
    step = next(s for s in run.steps if s.step == GC_COLLECT)
    assert step.ran and "full pass skipped" in step.detail and alive(old) == 200
    run = RecoveryLadder(min_interval=0, gc_max_pause=None).run("unbounded")
    step = next(s for s in run.steps if s.step == GC_COLLECT)
    assert alive(old) == 0 and "skipped" not in step.detail


def test_the_optimizer_collection_keeps_to_a_pause_budget(no_auto_gc: None) -> None:
    from memlens.remedies.gc_tuning import GarbageCollectionOptimizer

    gco = GarbageCollectionOptimizer()
    old = old_garbage()
    result = gco.perform_optimized_collection(max_pause=1e-12)
    assert result.generations == (0, 1) and alive(old) == 200
    result = gco.perform_optimized_collection(max_pause=3600.0)
    assert result.generations == (0, 1, 2) and alive(old) == 0
