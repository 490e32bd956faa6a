"""Census with retained sizes at 1M objects: seconds, beside a bare heap walk.

    python benchmarks/deepdive/bench_census.py [--objects 1000000]

Builds a heap of about N objects (instances with attributes, their lists, strings
and floats), then times ``census()`` (graph, dominators, retained sizes, paths) next
to the baseline a census cannot beat: one ``gc.get_referents`` pass over
``gc.get_objects()``. Target: <= 5 s at 1M objects.
"""

from __future__ import annotations

import argparse
import gc
import time


class Record:
    def __init__(self, i: int) -> None:
        self.name = f"user-{i}"
        self.score = i * 0.5
        self.tags = [i]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=1_000_000)
    args = parser.parse_args()
    # Each Record brings 4 objects (instance, str, float, list; the int in the list
    # is the fifth unless cached).
    data = [Record(i) for i in range(args.objects // 5)]
    from memlens.heap.census import census

    t0 = time.perf_counter()
    objs = gc.get_objects()
    gc.get_referents(*objs)
    bare = time.perf_counter() - t0
    del objs
    t0 = time.perf_counter()
    result = census()
    took = time.perf_counter() - t0
    print(f"objects in the census: {result['objects']:,}, edges: {result['edges']:,}")
    print(f"bare walk (get_objects + get_referents): {bare:.2f} s")
    print(f"census with retained sizes and paths:   {took:.2f} s  ({took / bare:.1f}x the walk)")
    print(
        f"largest: {result['largest'][0]['description']} at {' '.join(result['largest'][0]['path'])}"
    )
    print("target <= 5 s:", "met" if took <= 5 else "NOT met")
    del data


if __name__ == "__main__":
    main()
