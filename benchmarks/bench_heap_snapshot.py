"""Snapshot processing at scale: sites and components vs ``tracemalloc.take_snapshot()``.

For each size, builds a heap of that many live traced blocks allocated from a few
hundred distinct call sites (various stack depths, some through the standard
library, some in named components), then times, in one run:

- ``take_snapshot``: ``tracemalloc.take_snapshot()`` itself (the baseline);
- ``process``: what a session stop does with it: group by traceback, drop
  memlens's own blocks, attribute sites against a baseline, sum components.

The ratio ``process / take_snapshot`` is the figure of merit (target <= 1.5x) and
``µs/block`` shows whether the cost is linear.

Usage: python benchmarks/bench_heap_snapshot.py [--sizes 100000,1000000,3000000] [--depth 25]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time

from memlens.heap.heap_meter import HeapMeter

_COMPONENT_SOURCE = """
def make(n, k):
    return [[k, i] for i in range(n)]
"""


def _component_module() -> object:
    """A real module on disk, so component attribution by module name applies."""
    root = tempfile.mkdtemp(prefix="memlens-bench-")
    os.makedirs(os.path.join(root, "benchcomp"))
    with open(os.path.join(root, "benchcomp", "__init__.py"), "w") as f:
        f.write(_COMPONENT_SOURCE)
    sys.path.insert(0, root)
    import benchcomp  # type: ignore[import-not-found]

    return benchcomp


def _site(kind: int, n: int, k: int) -> list[object]:
    # A few shapes of allocation: plain lists, dicts, strings, json through stdlib.
    if kind == 0:
        return [[k] for _ in range(n)]
    if kind == 1:
        return [{"k": k} for _ in range(n)]
    if kind == 2:
        return [f"{k}-{i}" * 2 for i in range(n)]
    return [json.dumps([k, i]) for i in range(n)]


def _deep(depth: int, kind: int, n: int, k: int) -> list[object]:
    if depth:
        return _deep(depth - 1, kind, n, k)
    return _site(kind, n, k)


def build(blocks: int, comp: object, sites: int = 300) -> list[object]:
    per_site = max(1, blocks // sites)
    held: list[object] = []
    for k in range(sites):
        if k % 10 == 0:
            held.append(comp.make(per_site, k))  # type: ignore[attr-defined]
        else:
            held.append(_deep(k % 12, k % 4, per_site, k))
    return held


def run(blocks: int, depth: int, comp: object) -> tuple[int, float, float]:
    meter = HeapMeter(depth, {"bench": "benchcomp"})
    meter.start()
    try:
        baseline = meter.snapshot()
        held = build(blocks, comp)
        gc.collect()
        t0 = time.perf_counter()
        snap = meter.snapshot()
        t1 = time.perf_counter()
        assert snap is not None and baseline is not None
        sites = meter.sites(snap, baseline, limit=10)
        totals = meter.component_totals(snap)
        t2 = time.perf_counter()
        live = len(snap.traces)
        assert sites and totals.get("bench", (0, 0))[0] > 0
        del snap, baseline, held
    finally:
        meter.stop()
    return live, t1 - t0, t2 - t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,3000000")
    parser.add_argument("--depth", type=int, default=25)
    args = parser.parse_args()
    comp = _component_module()
    print(f"{'live blocks':>12} {'take_snapshot':>14} {'process':>9} {'ratio':>7} {'µs/block':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        live, snap_s, proc_s = run(size, args.depth, comp)
        print(
            f"{live:>12,} {snap_s:>13.2f}s {proc_s:>8.2f}s {proc_s / snap_s:>6.2f}x"
            f" {proc_s / live * 1e6:>9.2f}"
        )


if __name__ == "__main__":
    main()
