"""The GC optimizer on a request-like workload: before/after p50, p99 and throughput.

The service keeps a preloaded heap (``--preload`` long-lived objects: config,
routing tables, a model vocabulary), and each request builds a small object graph
with reference cycles (an ORM-like parent/child tree plus a JSON body) and drops
it. ``optimize_gc_settings`` measures the current settings and its candidates on
this workload and applies one only if p99 latency and throughput both improve.

Then, as an independent check in the same process, the chosen settings and the
original ones are measured again side by side (interleaved rounds, medians), and
the ratios printed. If nothing was chosen, the check compares the best-looking
candidate anyway, to show what applying it blindly would have done.

    python benchmarks/remedies/bench_gc_optimizer.py                  # ~1 minute
    python benchmarks/remedies/bench_gc_optimizer.py --preload 50000  # a small heap
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
from typing import Any

from memlens.remedies.gc_tuning import GarbageCollectionOptimizer, GcMeasurement, GcSettings


class Node:
    def __init__(self, parent: Node | None, value: int) -> None:
        self.parent = parent
        self.children: list[Node] = []
        self.value = value
        if parent is not None:
            parent.children.append(self)  # a cycle: parent <-> child


def request(i: int = 0) -> int:
    root = Node(None, i)
    for j in range(30):
        child = Node(root, j)
        for k in range(8):
            Node(child, k)
    body = json.dumps({"id": i, "items": [{"n": n.value} for n in root.children]})
    return len(body)


def preload(n: int) -> list[Any]:
    return [{"key": f"k{i}", "vals": [i, i + 1]} for i in range(n)]


def fmt(m: GcMeasurement) -> str:
    return (
        f"{m.settings.describe():<34} p50 {m.latency_p50 * 1e3:6.3f} ms  "
        f"p99 {m.latency_p99 * 1e3:6.3f} ms  max {m.latency_max * 1e3:6.2f} ms  "
        f"{m.throughput:8.0f} req/s  GC pause p99 {m.pause_p99 * 1e3:6.3f} ms "
        f"({m.collections} collections)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preload", type=int, default=300_000, help="long-lived objects")
    parser.add_argument("--calls", type=int, default=1500, help="requests per setting and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    heap = preload(args.preload)
    original = GcSettings.current()
    opt = GarbageCollectionOptimizer()
    report = opt.optimize_gc_settings(request, calls=args.calls, rounds=args.rounds)
    print(f"preloaded objects: {args.preload:,}; {args.calls} requests x {args.rounds} rounds")
    print("measured by optimize_gc_settings (medians over rounds):")
    print("  baseline  " + fmt(report.baseline))
    for c in report.candidates:
        print("  candidate " + fmt(c))
    print(f"decision: {'APPLIED' if report.applied else 'kept current'}: {report.reason}")

    chosen = report.chosen
    if chosen is None:  # show what blindly applying the fastest candidate would do
        chosen = max(report.candidates, key=lambda m: m.throughput).settings
        label = f"not applied, fastest candidate ({chosen.describe()})"
    else:
        label = f"applied ({chosen.describe()})"
    opt.restore()

    # Independent check: original vs chosen, interleaved, medians of per-round ratios.
    p50, p99, thr = [], [], []
    for r in range(args.rounds):
        pair = [original, chosen] if r % 2 == 0 else [chosen, original]
        got = {s: opt.measure(s, request, args.calls) for s in pair}
        before, after = got[original], got[chosen]
        p50.append(after.latency_p50 / before.latency_p50)
        p99.append(after.latency_p99 / before.latency_p99)
        thr.append(after.throughput / before.throughput)
    print(f"check, {label} / original, median of {args.rounds} paired rounds:")
    print(
        f"  p50 x{statistics.median(p50):.2f}  p99 x{statistics.median(p99):.2f}  "
        f"throughput x{statistics.median(thr):.2f}"
    )
    gc.set_threshold(*original.thresholds)
    del heap


if __name__ == "__main__":
    main()
