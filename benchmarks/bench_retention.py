"""Retention on a heap of one million GC-tracked objects.

Builds a service-like heap (``--objects`` tracked objects: instances, their lists
and dicts, plus untracked strings), hides leaked objects in a few kinds of named
roots, then times what the doctor does once per diagnosis: build the reverse
reference graph, index the roots, and find the shortest path for every sample.
Printed in CPU seconds of this process (other jobs on a shared machine do not count).

Usage: python benchmarks/bench_retention.py [--objects 1000000] [--samples 20]
"""

from __future__ import annotations

import argparse
import functools
import gc
import sys
import time

from memlens.heap.doctor.graph import ReverseGraph
from memlens.heap.doctor.retention import Roots, find_path


class Record:
    def __init__(self, i: int) -> None:
        self.tags = [i, i + 1]
        self.meta = {"id": str(i), "tags": self.tags}  # holds a list: tracked


class Registry:
    entries: list[object] = []


_cache: dict[int, object] = {}


@functools.cache
def _memo(i: int) -> list[int]:
    return [i]


def build(n_objects: int) -> list[Record]:
    # Each Record is three tracked objects (instance, list, dict).
    return [Record(i) for i in range(n_objects // 3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    heap = build(args.objects)
    samples: list[object] = []
    for k in range(args.samples):
        kind = k % 3
        if kind == 0:
            obj: object = Record(-k)
            _cache[k] = obj
        elif kind == 1:
            obj = f"leaked string {k}"  # untracked: found through its holder
            Registry.entries.append(obj)
        else:
            obj = _memo(k)
        samples.append(obj)
    gc.collect()
    tracked = len(gc.get_objects())
    t0 = time.process_time()
    graph = ReverseGraph(samples, ignore={id(samples), id(heap)})
    t1 = time.process_time()
    roots = Roots(graph, {id(sys._getframe())})
    t2 = time.process_time()
    found = sum(1 for s in samples if find_path(s, graph, roots).found)
    t3 = time.process_time()
    graph.close()
    print(f"heap: {tracked:,} GC-tracked objects; {args.samples} leaked samples")
    print(f"reverse graph: {t1 - t0:.2f} s   roots: {t2 - t1:.2f} s   paths: {t3 - t2:.2f} s (CPU)")
    print(
        f"retention total: {t3 - t0:.2f} s   ({found}/{args.samples} samples reached a named root)"
    )


if __name__ == "__main__":
    main()
