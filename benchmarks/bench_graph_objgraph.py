"""Retaining paths on big heaps: memlens's reverse graph vs objgraph, side by side.

For each heap size and target depth, two fresh subprocesses build the same heap
(``--objects`` GC-tracked objects: instances with a list and a dict each, plus
untracked strings), hide a target ``depth`` hops below a module global, and find
its retaining path:

- ``memlens``: build the reverse reference graph, index the roots, ``find_path``
  (what the doctor does once per diagnosis);
- ``objgraph``: ``objgraph.find_backref_chain(target, objgraph.is_proper_module)``.

Printed: CPU seconds for each (the process's own CPU time, so other jobs on a
shared machine do not skew the ratio), the ratio memlens/objgraph (target <= 1x), and the RSS
each added while searching (memlens's graph should grow linearly with the heap).
Both must find a path.

Usage: python benchmarks/bench_graph_objgraph.py [--sizes 1000000,5000000] [--depths 2,20]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time

import psutil


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
    gc.collect()
    tracked = len(gc.get_objects())
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t0 = time.process_time()
    if tool == "objgraph":
        import objgraph

        path = objgraph.find_backref_chain(target, objgraph.is_proper_module, max_depth=depth + 5)
        found = len(path) > 1 and isinstance(path[0], type(sys))
        hops = len(path) - 1
    else:
        from memlens.heap.doctor.graph import ReverseGraph
        from memlens.heap.doctor.retention import Roots, find_path

        graph = ReverseGraph([target], ignore={id(heap)})
        roots = Roots(graph, {id(sys._getframe())})
        result = find_path(target, graph, roots)
        found = result.found
        hops = len(result.hops)
        rss1 = proc.memory_info().rss  # the graph is still alive here
        graph.close()
    elapsed = time.process_time() - t0
    if tool == "objgraph":
        rss1 = proc.memory_info().rss
    del heap
    return {
        "tracked": tracked,
        "seconds": elapsed,
        "rss_added": rss1 - rss0,
        "found": found,
        "hops": hops,
    }


def run_child(objects: int, depth: int, tool: str) -> dict[str, object]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            tool,
            "--sizes",
            str(objects),
            "--depths",
            str(depth),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,5000000")
    parser.add_argument("--depths", default="2,20")
    parser.add_argument("--child", choices=["memlens", "objgraph"])
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    depths = [int(d) for d in args.depths.split(",")]
    if args.child:
        print(json.dumps(child(sizes[0], depths[0], args.child)))
        return
    print(
        f"{'tracked':>10} {'depth':>5} {'memlens':>9} {'objgraph':>9} {'ratio':>6}"
        f" {'memlens +RSS':>13} {'objgraph +RSS':>14}"
    )
    for size in sizes:
        for depth in depths:
            mine = run_child(size, depth, "memlens")
            theirs = run_child(size, depth, "objgraph")
            if not (mine["found"] and theirs["found"]):
                print(f"  (a path was not found: memlens {mine}, objgraph {theirs})")
            ms, os_ = float(mine["seconds"]), float(theirs["seconds"])  # type: ignore[arg-type]
            print(
                f"{mine['tracked']:>10,} {depth:>5} {ms:>8.2f}s {os_:>8.2f}s {ms / os_:>5.2f}x"
                f" {int(mine['rss_added']) / 2**20:>10.0f} MiB"  # type: ignore[call-overload]
                f" {int(theirs['rss_added']) / 2**20:>11.0f} MiB"  # type: ignore[call-overload]
            )


if __name__ == "__main__":
    main()
