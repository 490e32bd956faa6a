"""What one checkpoint of the doctor's watch costs on a big growing heap, in full
collections: the checkpoint's CPU time over that of one ``gc.collect()`` on the same
heap, measured side by side (so the ratio holds on a loaded machine), and the passes
over the heap it made (full collections over more than a handful of objects).

The heap grows like a plotting library's never-closed figures: each "call" keeps
``--per-call`` tracked objects in reference cycles. Run it against another checkout
with ``PYTHONPATH=<other>/src`` to compare two versions of the doctor.

    python benchmarks/leaks/bench_checkpoint.py --calls 160,480 --per-call 1400
"""

from __future__ import annotations

import argparse
import gc
import sys
import time

from memlens.heap.doctor import look
from memlens.heap.doctor.iterations import Engine, Options
from memlens.heap.doctor.sites import CodeMap


class Node:
    def __init__(self, owner: object) -> None:
        self.owner = owner


class Figure:
    def __init__(self, n: int) -> None:
        self.parts = [Node(self) for _ in range(n - 2)]


REGISTRY: list[Figure] = []


class Passes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2 and len(gc.get_objects()) > 100:
            self.count += 1


def cpu(fn: object, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.process_time()
        fn()  # type: ignore[operator]
        best = min(best, time.process_time() - t)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", default="160,480", help="heap sizes, in calls kept")
    ap.add_argument("--per-call", type=int, default=1400, help="tracked objects per call")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    # A start heap of its own, as an imported library leaves one.
    start_heap = [Figure(1400) for _ in range(50)]
    engine = Engine(CodeMap(()), Options(warmup=0, min_checkpoints=10**6, max_checkpoints=10**6))
    engine.begin()
    engine.phase = look.WATCH
    passes = Passes()
    print(f"start heap frozen: {gc.get_freeze_count():,} objects")
    for target in (int(c) for c in args.calls.split(",")):
        while len(REGISTRY) < target:
            REGISTRY.append(Figure(args.per_call))
            engine.iterations += 1
        collect = cpu(gc.collect, args.rounds)
        checkpoint = cpu(engine._checkpoint, args.rounds)
        gc.callbacks.append(passes)
        passes.count = 0
        engine._checkpoint()
        gc.callbacks.remove(passes)
        print(
            f"{target} calls ({len(gc.get_objects()):,} objects outside the frozen heap):"
            f" checkpoint {checkpoint * 1e3:.0f} ms = {checkpoint / collect:.2f} x one"
            f" gc.collect() ({collect * 1e3:.0f} ms); passes over the heap: {passes.count};"
            f" start heap still frozen: {engine.frozen.active}"
        )
    engine.end()
    del start_heap
    return 0


if __name__ == "__main__":
    sys.exit(main())
