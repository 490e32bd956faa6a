"""The watch's heap settled between checkpoints (see ``settled``): the steps' own
collections skip what the last checkpoint saw, and settled garbage stops it."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from memlens.heap.doctor.settled import SETTLE_CHECK, SettledHeap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


@pytest.fixture
def nothing_frozen() -> Any:
    if gc.get_freeze_count():
        pytest.skip("something in this process froze objects")
    yield
    gc.unfreeze()


def test_settling_freezes_until_the_next_checkpoint(nothing_frozen: None) -> None:
    heap = SettledHeap()
    kept = [_Node() for _ in range(100)]
    heap.settle()
    assert heap.active and gc.get_freeze_count() >= 100
    heap.collect()
    assert not heap.active and gc.get_freeze_count() == 0
    assert heap.enabled and len(kept) == 100


def test_garbage_made_of_settled_objects_is_found_and_stops_settling(
    nothing_frozen: None,
) -> None:
    heap = SettledHeap()
    kept = [_Node() for _ in range(50)]
    gc.collect()
    for window in range(1, SETTLE_CHECK + 1):
        heap.settle()
        if window == 1:
            kept.clear()  # settled cycles, unreachable now: the freeze keeps them
        heap.collect()
    assert heap.checks == 1
    assert not heap.enabled and heap.garbage >= 50
    heap.settle()  # off for good
    assert not heap.active and gc.get_freeze_count() == 0


def test_without_settled_garbage_settling_goes_on(nothing_frozen: None) -> None:
    heap = SettledHeap()
    kept: list[_Node] = []
    gc.collect()  # nothing unreachable is settled with the rest
    for _ in range(3 * SETTLE_CHECK):
        heap.settle()
        kept.extend(_Node() for _ in range(20))
        for _ in range(5):
            _Node()  # the window's own garbage, collected while the rest is settled
        heap.collect()
    assert heap.enabled and heap.checks == 3 and heap.settled == 3 * SETTLE_CHECK
    heap.stop()
    heap.settle()
    assert not heap.active and gc.get_freeze_count() == 0


# Fresh interpreters: the engine starts settling once the steps' heap has outgrown
# the heap frozen at the start, which in the test process is pytest's (big) heap.
_PROBE = r"""import gc, json, sys
from collections import deque
import memlens.heap.doctor.settled as settled
from memlens.heap.doctor import doctor

made = []
_init = settled.SettledHeap.__init__
def init(self):
    _init(self)
    made.append(self)
settled.SettledHeap.__init__ = init

class Part:
    def __init__(self, owner, k):
        self.owner = owner
        self.k = k

class Chart:
    def __init__(self, n):
        self.parts = [Part(self, k) for k in range(n)]

REGISTRY = []  # leak: every chart kept
RECENT = deque(maxlen=150)  # look-alike: the oldest chart dropped, as cyclic garbage

def leak(i):
    REGISTRY.append(Chart(400))

def bounded(i):
    RECENT.append(Chart(400))

diag = doctor(leak if sys.argv[1] == "leak" else bounded, budget=60)
heap = made[-1]
f = diag.findings[0] if diag.findings else None
print(json.dumps({
    "verdict": diag.verdict, "reason": diag.reason,
    "site": f.site if f else "", "root": f.root if f else "",
    "category": f.category if f else "", "findings": len(diag.findings),
    "settled": heap.settled, "checks": heap.checks, "enabled": heap.enabled,
    "garbage": heap.garbage, "frozen_after": gc.get_freeze_count(),
    "gc_after": gc.isenabled(),
}))
"""


def _probe(kind: str, tmp_path: Path) -> dict[str, Any]:
    script = tmp_path / "charts.py"
    script.write_text(_PROBE)
    proc = subprocess.run(
        [sys.executable, str(script), kind], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def test_a_leak_of_many_objects_per_call_is_found_on_a_settled_heap(tmp_path: Path) -> None:
    out = _probe("leak", tmp_path)
    assert out["verdict"] == "leak", out
    assert out["settled"] > 0 and out["enabled"] is False  # stopped at the end
    assert out["garbage"] == 0  # no settled garbage: nothing stopped it early
    line = _PROBE.splitlines().index("        self.parts = [Part(self, k) for k in range(n)]")
    assert out["site"].endswith(f"charts.py:{line + 1}"), out["site"]
    assert "REGISTRY" in out["root"], out["root"]
    assert out["category"] == "growing_collection"
    assert out["findings"] == 1
    assert out["frozen_after"] == 0 and out["gc_after"]


def test_a_bounded_cache_of_cycles_stops_settling_and_is_no_leak(tmp_path: Path) -> None:
    out = _probe("bounded", tmp_path)
    assert out["verdict"] != "leak", out
    assert out["settled"] > 0 and out["checks"] >= 1
    assert out["garbage"] > 0  # the evicted charts, found by the check
    assert out["frozen_after"] == 0 and out["gc_after"]
