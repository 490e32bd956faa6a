"""Retaining paths on big heaps: memlens's reverse graph vs objgraph, side by side.

For each heap size and target depth, fresh subprocesses build the same heap
(``--objects`` GC-tracked objects: instances with a list and a dict each, plus
untracked strings), hide a target ``depth`` hops below a module global, and find
its retaining path:

- ``memlens``: ``ReverseGraph([target])`` (lazy: one C pass over the heap per
  breadth-first level, the whole graph after ``SCAN_LIMIT`` passes), index the
  roots, ``find_path`` -- one path, as ``memlens.heap.doctor.retention`` finds it
  for a single object;
- ``memlens built``: the same with ``lazy=False``, the whole graph built first (what
  the doctor does once per diagnosis, then asks it about every sample);
- ``objgraph``: ``objgraph.find_backref_chain(target, objgraph.is_proper_module)``.

Imports happen before the clock starts. Printed: CPU seconds for each (the process's
own CPU time, so other jobs on a shared machine do not skew the ratio), the ratios
to objgraph (target <= 1x), the heap passes the lazy search used, the RSS each
added while searching (memlens's graph grows linearly with the heap) and each
process's peak RSS (the heap itself included, the same for all three). All must find
a path.

Usage: python benchmarks/bench_graph_objgraph.py [--sizes 1000000,5000000] [--depths 2,20]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time

import psutil

TOOLS = ("memlens", "built", "objgraph")


class Record:
    def __init__(self, i: int) -> None:
        self.tags = [i, i + 1]
        self.meta = {"id": str(i), "tags": self.tags}


class Node:
    def __init__(self, child: object) -> None:
        self.child = child


HOLDER: list[object] = []


def child(objects: int, depth: int, tool: str) -> dict[str, object]:
    heap = [Record(i) for i in range(objects // 3)]
    target: object = Record(-1)
    # depth hops from this module's dict: HOLDER list, then Node -> __dict__ pairs.
    chain: object = target
    for _ in range(max(0, (depth - 2) // 2)):
        chain = Node(chain)
    HOLDER.append(chain)
    del chain
    if tool == "objgraph":
        import objgraph
    else:
        from memlens.heap.doctor.graph import ReverseGraph
        from memlens.heap.doctor.retention import Roots, find_path
    gc.collect()
    tracked = len(gc.get_objects())
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t0 = time.process_time()
    scans = 0
    if tool == "objgraph":
        path = objgraph.find_backref_chain(target, objgraph.is_proper_module, max_depth=depth + 5)
        found = len(path) > 1 and isinstance(path[0], type(sys))
        hops = len(path) - 1
        rss1 = proc.memory_info().rss
    else:
        graph = ReverseGraph([target], ignore={id(heap)}, lazy=tool == "memlens")
        roots = Roots(graph, {id(sys._getframe())})
        result = find_path(target, graph, roots)
        found = result.found
        hops = len(result.hops)
        scans = graph.scans
        rss1 = proc.memory_info().rss  # the graph is still alive here
        graph.close()
    elapsed = time.process_time() - t0
    del heap
    return {
        "tracked": tracked,
        "seconds": elapsed,
        "rss_added": rss1 - rss0,
        "found": found,
        "hops": hops,
        "scans": scans,
        "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux: KiB
    }


def run_child(objects: int, depth: int, tool: str) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--child", tool]
    cmd += ["--sizes", str(objects), "--depths", str(depth)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,5000000")
    parser.add_argument("--depths", default="2,20")
    parser.add_argument("--child", choices=TOOLS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    depths = [int(d) for d in args.depths.split(",")]
    if args.child:
        print(json.dumps(child(sizes[0], depths[0], args.child)))
        return
    print(
        f"{'tracked':>10} {'depth':>5} {'memlens':>8} {'built':>7} {'objgraph':>8}"
        f" {'ratio':>6} {'built':>6} {'passes':>6} {'+RSS':>8} {'built':>8} {'objgraph':>8}"
        f" {'peak':>8} {'built':>8} {'objgraph':>8}"
    )
    for size in sizes:
        for depth in depths:
            res = {tool: run_child(size, depth, tool) for tool in TOOLS}
            if not all(r["found"] for r in res.values()):
                print(f"  (a path was not found: {res})")
            secs = {t: float(r["seconds"]) for t, r in res.items()}  # type: ignore[arg-type]
            mib = {t: int(r["rss_added"]) / 2**20 for t, r in res.items()}  # type: ignore[call-overload]
            peak = {t: int(r["peak"]) / 2**20 for t, r in res.items()}  # type: ignore[call-overload]
            print(
                f"{res['memlens']['tracked']:>10,} {depth:>5} {secs['memlens']:>7.2f}s"
                f" {secs['built']:>6.2f}s {secs['objgraph']:>7.2f}s"
                f" {secs['memlens'] / secs['objgraph']:>5.2f}x"
                f" {secs['built'] / secs['objgraph']:>5.2f}x {res['memlens']['scans']:>6}"
                f" {mib['memlens']:>4.0f} MiB {mib['built']:>4.0f} MiB {mib['objgraph']:>4.0f} MiB"
                f" {peak['memlens']:>4.0f} MiB {peak['built']:>4.0f} MiB {peak['objgraph']:>4.0f} MiB"
            )


if __name__ == "__main__":
    main()
