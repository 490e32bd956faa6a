"""The growth test tells leaks from plateaus, steps and sawtooths."""

from __future__ import annotations

from memlens.heap.doctor.growth import FLAT, GROWING, UNCLEAR, assess, segment_minima

XS = [float(5 * k) for k in range(1, 25)]


def test_linear_growth_is_growing() -> None:
    g = assess(XS, [1000 + 50 * x for x in XS], min_rate=8)
    assert g.state == GROWING and abs(g.rate - 50) < 1e-6


def test_flat_series_is_flat() -> None:
    assert assess(XS, [1000.0] * len(XS), min_rate=8).state == FLAT


def test_cache_filling_to_bound_is_not_growing() -> None:
    ys = [min(1000 + 50 * x, 3000) for x in XS]
    assert assess(XS, ys, min_rate=8).state == FLAT


def test_one_time_step_is_not_growing() -> None:
    ys = [1000.0 if x < 60 else 9000.0 for x in XS]
    assert assess(XS, ys, min_rate=8).state != GROWING


def test_sawtooth_is_not_growing() -> None:
    ys = [1000 + 100 * (int(x) % 20) for x in XS]
    assert assess(XS, ys, min_rate=8).state != GROWING


def test_growth_below_min_rate_is_not_growing() -> None:
    assert assess(XS, [1000 + 0.5 * x for x in XS], min_rate=8).state != GROWING


def test_too_few_points_is_unclear() -> None:
    assert assess([1.0, 2.0], [1.0, 2.0], min_rate=0).state == UNCLEAR


def _blocks(xs: list[float], every: float, block: float = 32_000.0) -> list[float]:
    # An arena that takes a new 32 KB block every ``every`` calls.
    return [5_000_000 + block * (1 + int(x // every)) for x in xs]


def test_memory_growing_in_blocks_is_not_flat_between_two_blocks() -> None:
    xs = [105.0 + 10 * k for k in range(14)]  # 105 … 235: one block, at 155
    ys = _blocks([x - 20 for x in xs], 135)
    assert assess(xs, ys, min_rate=256, noise=4096).state == FLAT  # as before
    assert assess(xs, ys, min_rate=256, noise=4096, chunked=True).state == UNCLEAR


def test_blocks_that_stopped_long_ago_are_flat() -> None:
    xs = [105.0 + 10 * k for k in range(24)]  # 105 … 335: the only block at 125
    ys = [5_000_000.0 if x < 125 else 5_032_000.0 for x in xs]
    assert assess(xs, ys, min_rate=256, noise=4096, chunked=True).state == FLAT


def test_blocks_over_a_long_window_are_growing() -> None:
    xs = [200.0 * k for k in range(1, 25)]
    assert assess(xs, _blocks(xs, 130), min_rate=128, noise=4096, chunked=True).growing


def test_against_peak_a_floor_that_dipped_and_came_back_is_flat() -> None:
    # Segment floors 4, 4, 1, 4, 4 (a sampled estimate's scatter): step by step the
    # floor "rose" by 3 after the dip; against the highest floor before, it did not.
    ys: list[float] = []
    for floor in (4.0, 4.0, 1.0, 4.0, 4.0):
        ys += [floor + 2, floor, floor + 3, floor + 1]
    xs = [float(k) for k in range(len(ys))]
    assert assess(xs, ys, min_rate=1, noise=2).state == UNCLEAR
    assert assess(xs, ys, min_rate=1, noise=2, against_peak=True).state == FLAT


def test_against_peak_a_floor_still_rising_is_not_flat() -> None:
    ys = [min(10.0 * x, 150.0) for x in range(24)] + [160.0] * 6
    xs = [float(k) for k in range(len(ys))]
    assert assess(xs, ys, min_rate=1, noise=2, against_peak=True).state != FLAT


def test_segment_minima() -> None:
    assert segment_minima([5, 1, 7, 2, 9, 3], 3) == [1, 2, 3]


_filled: dict[int, str] = {}
_unbounded: dict[int, str] = {}


def test_a_bound_reached_after_the_first_window_is_not_a_leak() -> None:
    from memlens.heap.doctor import doctor

    # 400 distinct keys, no bound written anywhere: growth for the first 400 calls,
    # well past the first checkpoint window, then nothing.
    def fill(i: int) -> None:
        _filled[i % 400] = f"value {i} " * 20

    diag = doctor(fill, budget=30)
    assert diag.verdict != "leak", [f.site for f in diag.findings]
    if diag.verdict == "inconclusive":  # a slow machine ran out of budget first
        assert "still filling" in diag.reason or "without a retainer" in diag.reason
    else:
        assert diag.verdict == "no leak" and diag.iterations > 600  # past the cap, widely


def test_a_leak_is_watched_past_first_sight_and_says_no_bound_was_seen() -> None:
    from memlens.heap.doctor import doctor

    def grow(i: int) -> None:
        _unbounded[i] = f"value {i} " * 20

    diag = doctor(grow, budget=30)
    assert diag.verdict == "leak"
    assert any("no bound seen" in n and "entries" in n for n in diag.notes), diag.notes


_BIG_HEAP = """
import json, sys
from memlens.heap.doctor import doctor

class Row:
    def __init__(self, i):
        self.i = i
        self.tags = [i, str(i)]

# A heap that existed before the diagnosis: over a million GC-tracked objects.
held = [Row(i) for i in range(600_000)]
capped, unbounded = {}, {}

def fill(i):
    capped[i % 400] = f"value {i} " * 20

def grow(i):
    unbounded[i] = f"value {i} " * 20

out = []
for step in (fill, grow):
    d = doctor(step, budget=30)
    out.append([d.verdict, d.iterations, d.reason, [f.root for f in d.findings]])
print(json.dumps(out))
"""


def test_a_big_heap_that_was_there_before_does_not_change_the_verdicts(tmp_path) -> None:
    # Late in a long pytest session the process holds hundreds of MB; checkpoints
    # that walked all of it ran out of budget and called the late cap a leak.
    import json
    import subprocess
    import sys

    script = tmp_path / "bigheap.py"
    script.write_text(_BIG_HEAP)
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (capped, unbounded) = json.loads(proc.stdout.strip().splitlines()[-1])
    assert capped[0] == "no leak" and capped[1] > 600, capped
    assert unbounded[0] == "leak" and "unbounded" in unbounded[3][0], unbounded
