"""memlens's tracers next to their peers, side by side in one run. Prints a table.

Three workloads, each run bare and under every tool, alternating the variants in
every round so machine noise hits them alike; medians of the program's own CPU
time (``time.process_time`` around its loop, so start-up and reports do not count)
and of peak RSS, both as ratios to the bare run:

- ``alloc``: allocation-heavy (many small lists, dicts and strings, most short-lived);
- ``request``: request-like (JSON decode/encode, a bounded window, a growing index);
- ``cpu``: mostly CPU (arithmetic in a loop, few allocations).

Variants: ``memlens run`` (exact, tracemalloc at depth 25), ``memlens run --no-trace``
(the launcher alone: what memlens costs before any tracer), ``memlens run --sample``
(the sampling tracer, interval chosen from the live heap), the same at a fixed 512 KiB
and 4 KiB, ``python -X tracemalloc=25``, ``memray run``
(default, and ``--native``) and ``scalene --memory`` where installed. Peak RSS is
``ru_maxrss`` of the child.

    python benchmarks/bench_sampler_peers.py            # 3 rounds
    python benchmarks/bench_sampler_peers.py --rounds 5 --scale 2
    python benchmarks/bench_sampler_peers.py --variants "bare,--sample" --workloads alloc
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

WORKLOADS = {
    "alloc": """
        def work(n):
            keep = []
            for i in range(n):
                row = {"id": i, "tags": [i, i + 1, i + 2], "name": "n%d" % i}
                tmp = [row, str(i) * 3, (i, i)]
                if i % 50 == 0:
                    keep.append(tmp)
            return len(keep)
        ITER = 400_000
    """,
    "request": """
        import json
        from collections import deque
        recent, index = deque(maxlen=1000), {}
        def work(n):
            total = 0
            for i in range(n):
                payload = json.loads('{"user": %d, "items": [1, 2, 3, 4, 5]}' % (i % 97))
                words = [f"w{(i * 7 + k) % 1000}" for k in range(12)]
                reply = json.dumps({"id": i, "score": sum(payload["items"]), "words": words})
                recent.append(reply)
                if i % 100 == 0:
                    index[i] = reply[:20]
                total += len(reply)
            return total
        ITER = 60_000
    """,
    "cpu": """
        def work(n):
            acc = 0
            for i in range(n):
                acc = (acc * 31 + i * i) % 1_000_003
            return acc
        ITER = 3_000_000
    """,
}

MAIN = """
import sys, time
c0 = time.process_time()
work(int(ITER * float(sys.argv[-1])))  # last: tools differ in what they put first
print(f"cpu {time.process_time() - c0:.6f}")
"""


def variants(py: str) -> dict[str, list[str] | None]:
    memray = shutil.which("memray")
    scalene = shutil.which("scalene")
    return {
        "bare": [py],
        "memlens run (exact)": [py, "-m", "memlens", "run", "-q", "--no-html"],
        # The launcher and its hosted script with no tracer: what --sample adds is
        # the hooks and the samples, what this adds is memlens being there at all.
        "memlens run --no-trace": [py, "-m", "memlens", "run", "-q", "--no-html", "--no-trace"],
        "memlens run --sample": [py, "-m", "memlens", "run", "-q", "--no-html", "--sample"],
        "--sample, fixed 512 KiB": [
            *(py, "-m", "memlens", "run", "-q", "--no-html", "--sample"),
            *("--sample-interval", "512KiB"),
        ],
        "--sample, fixed 4 KiB": [
            *(py, "-m", "memlens", "run", "-q", "--no-html", "--sample"),
            *("--sample-interval", "4KiB"),
        ],
        "python -X tracemalloc=25": [py, "-X", "tracemalloc=25"],
        "memray run": [memray, "run", "-q", "-f", "-o", "{tmp}/out.bin"] if memray else None,
        "memray run --native": (
            [memray, "run", "-q", "--native", "-f", "-o", "{tmp}/out.bin"] if memray else None
        ),
        "scalene --memory": (
            [scalene, "run", "--cli", "--memory", "{script}", "---", "{scale}"] if scalene else None
        ),
    }


def run_once(cmd: list[str], script: Path, scale: float, tmp: str) -> tuple[float, int]:
    argv = [c.replace("{tmp}", tmp) for c in cmd]
    if "{script}" in argv:  # the tool wants the program's arguments after a separator
        argv = [a.replace("{script}", str(script)).replace("{scale}", str(scale)) for a in argv]
    else:
        argv += [str(script), str(scale)]
    env = {**os.environ, "MEMLENS_DB": os.path.join(tmp, "m.db")}
    # A fresh process per run, so ru_maxrss of the children is this run's own peak.
    probe = (
        "import resource, subprocess, sys; "
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(p.stdout); print(p.stderr, file=sys.stderr); "
        "print('rss', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=1800,
    )
    cpu = rss = None
    for line in out.stdout.splitlines():
        if line.startswith("cpu "):
            cpu = float(line.split()[1])
        elif line.startswith("rss "):
            rss = int(line.split()[1]) * 1024
    if cpu is None or rss is None:
        raise RuntimeError(f"{argv[:3]} failed: {out.stderr[-400:]}")
    return cpu, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the iterations")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument(
        "--variants", default="", help="only variants whose name contains one of these (comma)"
    )
    args = parser.parse_args()
    wanted = [w for w in args.variants.split(",") if w]
    table = {
        name: cmd
        for name, cmd in variants(sys.executable).items()
        if cmd is not None and (name == "bare" or not wanted or any(w in name for w in wanted))
    }
    missing = [name for name, cmd in variants(sys.executable).items() if cmd is None]
    tmp = tempfile.mkdtemp(prefix="memlens-peers-")
    print(f"Python {sys.version.split()[0]}, {args.rounds} rounds, scale {args.scale}")
    if missing:
        print("not installed: " + ", ".join(missing))
    for wl in args.workloads.split(","):
        script = Path(tmp) / f"{wl}.py"
        script.write_text(textwrap.dedent(WORKLOADS[wl]) + MAIN)
        cpu: dict[str, list[float]] = {n: [] for n in table}
        rss: dict[str, list[int]] = {n: [] for n in table}
        for _ in range(args.rounds):
            for name, cmd in table.items():
                c, r = run_once(cmd, script, args.scale, tmp)
                cpu[name].append(c)
                rss[name].append(r)
        base_cpu = statistics.median(cpu["bare"])
        base_rss = statistics.median(rss["bare"])
        print(f"\n{wl} workload (bare: {base_cpu:.3f} s CPU, {base_rss / 2**20:.1f} MiB peak RSS)")
        print(f"  {'variant':<26} {'CPU ratio':>10} {'peak RSS ratio':>15}")
        for name in table:
            print(
                f"  {name:<26} {statistics.median(cpu[name]) / base_cpu:>9.2f}x"
                f" {statistics.median(rss[name]) / base_rss:>14.2f}x"
            )


if __name__ == "__main__":
    main()
