"""The sampled doctor on a bounded cache, in a process that already holds a big heap:
the verdict, the calls it measured and what its checkpoints cost, per start heap.

A long pytest session or a service holds a heap the steps did not make. The doctor
freezes it at the start (``frozen.py``), so a checkpoint should cost what the steps
allocate; a sampled run takes ~70 checkpoints (it measures at least 1,600 calls at
4 KiB), so whatever a checkpoint still does per object of the start heap decides
whether the run fits its budget ("no leak") or not ("inconclusive").

The start heap is ``--containers`` lists of three entries each (the containers a
checkpoint reads the lengths of) and the bounded look-alike of
``tests/doctor/test_sampled.py`` is the step. Run it against another checkout with
``PYTHONPATH=<other>/src`` to compare two versions of the doctor::

    python benchmarks/leaks/bench_big_start_heap.py --containers 0,300000,3000000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections import OrderedDict

from memlens.heap.doctor import doctor
from memlens.heap.doctor.iterations import Engine


class Session:
    def __init__(self, i: int) -> None:
        self.user = i
        self.token = f"t{i:08d}" * 40


_recent: OrderedDict[int, Session] = OrderedDict()


def step(i: int) -> None:
    _recent[i] = Session(i)
    if len(_recent) > 64:
        _recent.popitem(last=False)


def run(containers: int, budget: float) -> dict[str, object]:
    held = [[0, 0, 0] for _ in range(containers)]
    _recent.clear()
    objects = len(gc.get_objects())
    seen: list[tuple[int, float]] = []

    def progress(engine: Engine) -> None:
        seen.append((engine.iterations, engine.elapsed))

    wall = time.perf_counter()
    cpu = time.process_time()
    diag = doctor(step, sample=4096, budget=budget, progress=progress)
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    del held
    gc.collect()
    return {
        "containers": containers,
        "objects_at_start": objects,
        "verdict": diag.verdict,
        "measured_calls": diag.details.get("sampling", {}).get("measured_calls"),
        "checkpoints": len(seen),
        "budget_used_s": round(seen[-1][1], 2) if seen else None,
        "budget_per_checkpoint_ms": round(1000 * seen[-1][1] / len(seen), 1) if seen else None,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "load": round(os.getloadavg()[0], 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--containers", default="0,300000,3000000", help="start heap sizes")
    ap.add_argument("--budget", type=float, default=20.0, help="the doctor's budget (its default)")
    args = ap.parse_args(argv)
    for n in (int(x) for x in args.containers.split(",")):
        print(json.dumps(run(n, args.budget)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
