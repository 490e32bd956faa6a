"""How close the sampling tracer's live bytes per site are to tracemalloc's, by interval.

Runs ``tests/heap/sampler_workload.py`` (four holding sites of ~3-16 MB with very
different block sizes, a churning site and a freed one; ~41 MB live) once under exact
tracemalloc and, for each mean sampling interval, under the sampler with several
seeds. For every site holding >= 1 % of the live heap it prints the largest relative
error over the seeds, the share of (site, seed) estimates within +-10 %, and the
error Poisson sampling predicts for the smallest such site (one standard deviation,
``sqrt(interval / bytes)``). ``auto`` is the sampler's default: the interval chosen
from the live heap (the interval it ended at is shown, the median over the seeds).
``--pace N`` adds N x 100 loop turns of CPU work per allocation, so that allocating is a
small part of the run, as in most programs (the automatic interval's cost governor
then leaves it where the heap asks; with --pace 0 the workload does nothing but
allocate, and the governor trades accuracy for its cost budget). ``--budget`` sets that
budget (the share of CPU time the sampler may cost, its hooks' fast path and its
samples; default the sampler's 2 %, which the monitor uses too).

Usage: python benchmarks/bench_sampler_accuracy.py [--intervals auto,8192,32768,131072,524288]
       [--seeds 5] [--pace 0] [--budget 0.02]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys

from memlens.heap.sampler import AUTO_BUDGET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = os.path.join(ROOT, "tests", "heap", "sampler_workload.py")


def run(
    backend: str, interval: int, seed: int, pace: int = 0, budget: float = AUTO_BUDGET
) -> tuple[dict[str, int], int]:
    out = subprocess.run(
        [sys.executable, WORKLOAD, backend, str(interval), str(seed), str(pace), str(budget)],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout)
    if data["backend"] != backend:
        raise SystemExit(f"asked for {backend}, ran {data['backend']} (is the extension built?)")
    return {k: int(v) for k, v in data["live"].items()}, int(data.get("interval", interval))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", default="auto,8192,32768,131072,524288")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pace", type=int, default=0, help="CPU work per allocation")
    parser.add_argument(
        "--budget", type=float, default=AUTO_BUDGET, help="automatic interval's cost budget"
    )
    args = parser.parse_args()
    exact, _ = run("tracemalloc", 1, 0)
    total = sum(exact.values())
    big = {line: size for line, size in exact.items() if size >= 0.01 * total}
    smallest = min(big.values())
    print(
        f"live heap {total / 2**20:.1f} MiB; {len(big)} sites hold >= 1 % "
        f"({smallest / 2**20:.1f} to {max(big.values()) / 2**20:.1f} MiB)"
    )
    print(f"{'interval':>14} {'max error':>10} {'within 10%':>11} {'predicted 1-sigma':>18}")
    for spec in args.intervals.split(","):
        interval = 0 if spec == "auto" else int(spec)
        errors = []
        used = []
        for seed in range(1, args.seeds + 1):
            sampled, at = run("sampling", interval, seed, args.pace, args.budget)
            used.append(at)
            errors += [abs(sampled.get(line, 0) - size) / size for line, size in big.items()]
        within = sum(e <= 0.10 for e in errors) / len(errors)
        at = sorted(used)[len(used) // 2]
        label = f"auto={at // 1024} KiB" if spec == "auto" else f"{interval // 1024} KiB"
        print(
            f"{label:>14} {max(errors) * 100:>9.1f}% {within * 100:>10.0f}%"
            f" {math.sqrt(at / smallest) * 100:>17.1f}%"
        )


if __name__ == "__main__":
    main()
