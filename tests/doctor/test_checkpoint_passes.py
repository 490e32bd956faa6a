"""A checkpoint's collector passes: one pass over the heap once nothing is frozen,
with the doctor's own allocations still charged to the doctor (see ``gcpasses``)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from typing import Any

import pytest

from memlens.heap.doctor import doctor
from memlens.heap.doctor.checkpoints import Reader
from memlens.heap.doctor.frozen import FrozenHeap
from memlens.heap.doctor.gcpasses import Hold, clear_free_lists, free_lists_clearable
from memlens.heap.doctor.sites import CodeMap
from tests.doctor.conftest import line_of


class _Part:
    """A tracked object with a cycle through its owner, as a library's artist has."""

    def __init__(self, owner: object, k: int) -> None:
        self.owner = owner
        self.k = k


class _Chart:
    def __init__(self, n: int) -> None:
        self.parts = [_Part(self, k) for k in range(n)]


_REGISTRY: list[_Chart] = []  # charts never removed: the leak


def _line(text: str) -> str:
    return line_of(__file__, text)


def test_free_lists_are_emptied_without_touching_the_heap() -> None:
    assert free_lists_clearable()
    kept = [_Part(None, k) for k in range(100)]
    clear_free_lists()
    # Nothing was freed or left frozen; the young objects are in the oldest generation.
    assert gc.get_freeze_count() == 0
    assert [p.k for p in kept] == list(range(100))
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(p) in oldest for p in kept)


def test_free_lists_are_not_emptied_that_way_while_anything_is_frozen() -> None:
    gc.freeze()
    try:
        assert not free_lists_clearable()
    finally:
        gc.unfreeze()


def test_hold_gives_the_collector_back_once() -> None:
    hold = Hold()
    assert gc.isenabled()
    hold.start()
    assert not gc.isenabled()
    hold.release()
    hold.release()
    assert gc.isenabled()
    gc.disable()
    try:
        hold.start()  # a program that disabled the GC keeps it disabled
        hold.release()
        assert not gc.isenabled()
    finally:
        gc.enable()


# Run in a fresh interpreter: its frozen heap is small, so the engine-level
# checkpoints below are cheap (in the test process they pass over pytest's heap).
_PROBE = r"""
import gc, json, sys
from memlens.heap.doctor import look
from memlens.heap.doctor.iterations import Engine, Options
from memlens.heap.doctor.sites import CodeMap

class Part:
    def __init__(self, k):
        self.k = k

heap = []
passes = [0]
least = [100]

def count(phase, info):
    # A full collection that traverses more than ``least`` objects (not the few made
    # after everything was frozen, such as this callback's own ``info``). It keeps
    # no new object: the blocks the program holds stay as they were.
    if phase == "start" and info["generation"] == 2 and len(gc.get_objects()) > least[0]:
        passes[0] += 1

def checkpoints(engine, n, grow, over=100):
    least[0] = over
    out = []
    for _ in range(n):
        heap.extend(Part(k) for k in range(grow))
        engine.iterations += 5
        before = passes[0]
        engine._checkpoint()
        out.append(passes[0] - before)
    return out

gc_on = sys.argv[1] == "on"
if not gc_on:
    gc.disable()
gc.set_threshold(0)  # no automatic collections: every pass counted is the doctor's
engine = Engine(CodeMap(()), Options(warmup=0, min_checkpoints=1000, max_checkpoints=2000))
engine.begin()
engine.phase = look.WATCH
gc.callbacks.append(count)
frozen = gc.get_freeze_count()
small = checkpoints(engine, 3, 300)
still_frozen = engine.frozen.active
checkpoints(engine, 1, frozen + 1000)
released = not engine.frozen.active
# Passes over the whole heap (more than the heap frozen at the start), and passes
# over what the steps made since the last checkpoint.
big = checkpoints(engine, 4, 300, over=frozen)
idle = checkpoints(engine, 10, 0, over=frozen)
settled = engine.reader.settled.settled
print(json.dumps({
    "frozen": frozen, "small": small, "still_frozen": still_frozen,
    "released": released, "big": big, "idle": idle, "settled": settled,
    "gc_after": gc.isenabled(),
    "idle_blocks": [cp.blocks for cp in engine.checkpoints[-10:]],
}))
engine.end()
print(json.dumps({"frozen_after_end": gc.get_freeze_count()}))
"""


@pytest.fixture(scope="module", params=["on", "off"])
def probe(request: pytest.FixtureRequest) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, request.param],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    out: dict[str, Any] = json.loads(lines[-2])
    out.update(json.loads(lines[-1]))
    out["gc_on"] = request.param == "on"
    return out


def test_the_frozen_heap_stays_out_of_the_passes_while_it_is_the_bigger(
    probe: dict[str, Any],
) -> None:
    # Two passes over the steps' heap per checkpoint (three with the GC disabled:
    # free lists, the unreachable cycles, free lists again), none over the frozen one.
    assert probe["frozen"] > 0 and probe["still_frozen"]
    assert probe["small"] == [2 if probe["gc_on"] else 3] * 3


def test_one_pass_per_checkpoint_once_the_steps_heap_outgrew_the_frozen_one(
    probe: dict[str, Any],
) -> None:
    # The frozen heap is handed back; then the collection that opens the window
    # (GC on) or the one that counts the unreachable cycles (GC off) is the only
    # pass, and the window's hold gives the collector back as it was.
    assert probe["released"]
    assert probe["gc_after"] == probe["gc_on"]
    assert probe["frozen_after_end"] == 0  # nothing left frozen by the doctor
    if not probe["gc_on"]:
        assert probe["big"] == [1] * 4
        assert probe["idle"] == [1] * 10
        assert probe["settled"] == 0  # with the GC off there is nothing to settle
        return
    # GC on: the heap is settled between checkpoints (see ``settled``), so only
    # every SETTLE_CHECK-th checkpoint passes over all of it.
    assert probe["settled"] > 0
    assert probe["big"] in ([1, 0, 1, 0], [0, 1, 0, 1]), probe["big"]
    assert sum(probe["idle"]) == 5 and max(probe["idle"]) == 1, probe["idle"]


def test_the_doctors_own_blocks_stay_its_own_with_one_pass(probe: dict[str, Any]) -> None:
    # Nothing happens between these checkpoints: the program's blocks do not move
    # although each window ends without a pass over the heap.
    blocks = probe["idle_blocks"]
    assert max(blocks) - min(blocks) <= 2, blocks


def test_a_leak_of_many_tracked_objects_per_call_is_found() -> None:
    # ~600 tracked objects per call, in cycles, kept by a module-level registry:
    # the steps' heap soon outgrows the frozen one, and the checkpoints after that
    # make one pass each. The verdict does not depend on the budget's timing.
    _REGISTRY.clear()

    def chart(i: int) -> None:
        _REGISTRY.append(_Chart(300))  # the registry keeps every chart

    try:
        diag = doctor(chart, budget=300)
    finally:
        _REGISTRY.clear()
    assert diag.verdict == "leak", diag.reason
    first = diag.findings[0]
    assert first.site.endswith(_line("self.parts = [_Part(self, k)")), first.site
    assert "_REGISTRY" in first.root, first.root
    assert first.category == "growing_collection", first.category
    assert len(diag.findings) == 1, [f.site for f in diag.findings]


class _CountingSet(set):  # type: ignore[type-arg]
    """The doctor's own ids, counting how often a container is looked up in them (once
    per container that a checkpoint follows in Python)."""

    looked = 0

    def __contains__(self, item: object) -> bool:
        self.looked += 1
        return super().__contains__(item)


def test_a_checkpoint_follows_only_the_grown_containers_of_the_frozen_heap() -> None:
    # The program's heap when the doctor began: its containers are frozen with it and
    # read at every checkpoint (a module-level registry is the typical holder), but
    # only those longer than at the first checkpoint reach Python-level code.
    held = [[k, k, k] for k in range(50_000)]
    short = [1]
    own = _CountingSet()
    reader = Reader(CodeMap(()), own)
    frozen = FrozenHeap()
    frozen.freeze()
    try:
        assert frozen.active, "the test process froze objects of its own"
        reader.use_frozen(frozen.containers, True)
        reader.frozen_types = frozen.types
        first = reader.read(1)
        reader.end_window()
        base = own.looked
        held[7].append(0)
        short.extend([2, 3, 4])  # grew past the minimum after the baseline: not followed
        own.looked = 0
        grown = reader.read(2)
        reader.end_window()
    finally:
        frozen.thaw()
    assert base >= 50_000  # the baseline reads every container once
    assert own.looked < 5_000, own.looked
    assert grown.container_lens.get(id(held[7])) == ("list", 4)
    assert id(held[8]) not in grown.container_lens
    assert id(short) not in grown.container_lens
    assert first.container_lens == {}
