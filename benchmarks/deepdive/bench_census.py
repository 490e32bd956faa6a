"""Census with retained sizes at 1M objects: seconds, side by side with baselines.

    python benchmarks/deepdive/bench_census.py [--objects 1000000] [--traced-frames 25]

Builds a heap of about N objects (instances with attributes, their lists, strings
and floats), then times, in this one process and in turn:

- ``getsizeof loop``: ``gc.get_objects()`` and ``sys.getsizeof`` per object, summed
  by type: the usual hand-written census (counts and shallow bytes only);
- ``objgraph.typestats``: counts by type only (when objgraph is installed);
- ``memlens (C)``: the census with retained sizes (dominators) and paths, C engine;
- ``memlens (Python)``: the same with the pure-Python engine.

Each runs with tracemalloc off, then on (``--traced-frames`` frames, as a traced
``memlens run`` has); ratios are to the getsizeof loop in the same state. Target:
the census with retained sizes <= 5 s at 1M objects.

With ``--attach`` it instead starts a separate process holding the same heap and
runs ``memlens objects PID``'s census in it (gdb before Python 3.14), with the C
engine and then the pure-Python one, printing what the target paid each time.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from typing import Any


class Record:
    def __init__(self, i: int) -> None:
        self.name = f"user-{i}"
        self.score = i * 0.5
        self.tags = [i]


def getsizeof_loop() -> dict[str, Any]:
    counts: Counter[type] = Counter()
    sizes: Counter[type] = Counter()
    getsizeof = sys.getsizeof
    for obj in gc.get_objects():
        tp = type(obj)
        counts[tp] += 1
        sizes[tp] += getsizeof(obj)
    return {"objects": sum(counts.values())}


def objgraph_typestats() -> dict[str, Any]:
    import objgraph

    return {"objects": sum(objgraph.typestats().values())}


def memlens_census(engine: str) -> Callable[[], dict[str, Any]]:
    from memlens.heap.census import census
    from memlens.heap.native_ext import load_extension

    accel = load_extension("_census") if engine == "c" else None

    def run() -> dict[str, Any]:
        return census(accel=accel)

    return run


_TARGET = """
import sys, time
sys.path.insert(0, {here!r})
from bench_census import Record
data = [Record(i) for i in range({n})]
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def attach_run(objects: int) -> None:
    import os
    import subprocess
    from pathlib import Path

    from memlens.heap import native_ext
    from memlens.heap import objects as census_objects

    here = str(Path(__file__).resolve().parent)
    proc = subprocess.Popen(
        [sys.executable, "-c", _TARGET.format(here=here, n=objects // 5)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("ready")
        for engine in ("c", "python"):
            if engine == "python":
                os.environ[native_ext.DISABLE_ENV] = "1"
            data = census_objects.census_pid(proc.pid, paths=True, timeout=600)
            print(
                f"{engine:<7} engine in the target: {data['objects']:,} objects; "
                f"{data['attach']['summary']}"
            )
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--attach", action="store_true", help="census of another process")
    parser.add_argument("--traced-frames", type=int, default=25)
    parser.add_argument(
        "--skip", default="", help="comma-separated tools to leave out (e.g. 'memlens (Python)')"
    )
    args = parser.parse_args()
    from memlens.heap.native_ext import load_extension

    if args.attach:
        attach_run(args.objects)
        return
    if load_extension("_census") is None:
        raise SystemExit("memlens._census is not built: python setup.py build_ext --inplace")
    # Each Record brings 4 objects (instance, str, float, list; the int in the list
    # is the fifth unless cached).
    data = [Record(i) for i in range(args.objects // 5)]
    tools: dict[str, Callable[[], dict[str, Any]]] = {"getsizeof loop": getsizeof_loop}
    try:
        import objgraph  # noqa: F401

        tools["objgraph.typestats"] = objgraph_typestats
    except ImportError:
        pass
    tools["memlens (C)"] = memlens_census("c")
    tools["memlens (Python)"] = memlens_census("python")
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    print(f"python {sys.version.split()[0]}, heap of {len(gc.get_objects()):,} tracked objects")
    print(f"{'tool':<22}{'tracemalloc':>12}{'seconds':>10}{'x loop':>8}  what")
    for traced in (False, True):
        if traced:
            tracemalloc.start(args.traced_frames)
        base = 0.0
        for name, fn in tools.items():
            if name in skip:
                continue
            gc.collect()
            t0 = time.perf_counter()
            result = fn()
            took = time.perf_counter() - t0
            base = base or took
            state = f"on ({args.traced_frames})" if traced else "off"
            what = "counts, shallow bytes"
            if "largest" in result:
                top = result["largest"][0]
                what = (
                    f"+ retained sizes, paths ({result['objects']:,} objects; largest "
                    f"{top['description']} at {' '.join(top['path'])})"
                )
                if not traced and name == "memlens (C)":
                    verdict = "met" if took <= 5 else "NOT met"
            print(f"{name:<22}{state:>12}{took:>10.2f}{took / base:>8.1f}  {what}")
        if traced:
            tracemalloc.stop()
    print("target <= 5 s at 1M objects (C engine, tracemalloc off):", verdict)
    del data


if __name__ == "__main__":
    main()
