"""How late ``os.fork()`` returns in the child, and how slow the child's first requests
are, with a running monitor in each mode, side by side with no monitor.

Issue #14 saw ``os.fork()`` return 9–21 s late in the child in ``advanced``/``debug``
mode with 200k live objects, because the after-fork hook took a full heap snapshot
on the child's main thread. This measures, for each mode, in one process per mode:

- ``fork return``: from just before ``os.fork()`` in the parent to the moment it
  returns in the child (``time.monotonic()`` is system-wide on Linux, so the two
  readings compare);
- ``first requests``: the slowest of the child's "requests" (a small dict/JSON
  round trip) over its first ``--window`` seconds, while the child's monitor thread
  runs as it would in a gunicorn worker;

with ``--objects`` live objects allocated after the monitor started (so tracemalloc
traces them in ``debug``). Each mode is forked ``--forks`` times; medians are shown,
and each figure's ratio to the no-monitor run of the same invocation.

``--src LABEL=DIR`` (repeatable) runs every mode under each memlens source tree
(``DIR`` goes first on ``PYTHONPATH``), interleaved in the same invocation, to set a
change against the code before it (``git archive <commit> | tar -x -C /tmp/before``).

Usage: python benchmarks/bench_fork_delay.py [--objects 200000] [--forks 5] [--window 2]
           [--src before=/tmp/before/src --src now=src]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

MODES = ("none", "production", "standard", "advanced", "debug")

CHILD = r"""
import json, os, statistics, sys, time
mode, objects, forks, window = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
if mode != "none":
    from memlens.core.config import Config
    from memlens.service import Monitor
    mon = Monitor(Config(mode=mode, persist_history=False)).start()
live = [{"i": i, "s": str(i) * 3} for i in range(objects)]
time.sleep(1.5)  # the monitor's first samples (and first snapshot) happen before forking
results = []
for _ in range(forks):
    r, w = os.pipe()
    before = time.monotonic()
    pid = os.fork()
    if pid == 0:
        returned = time.monotonic()
        os.close(r)
        worst, end = 0.0, returned + window
        while time.monotonic() < end:
            t = time.perf_counter()
            json.loads(json.dumps({"user": 1, "items": list(range(50))}))
            worst = max(worst, time.perf_counter() - t)
            time.sleep(0.005)
        os.write(w, json.dumps([returned, worst]).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        returned, worst = json.loads(f.read())
    os.waitpid(pid, 0)
    results.append((returned - before, worst))
print(json.dumps({
    "fork_return": statistics.median(x for x, _ in results),
    "first_requests": statistics.median(y for _, y in results),
}))
"""


def run_mode(
    mode: str, objects: int, forks: int, window: float, src: str | None = None
) -> dict[str, float]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(objects), str(forks), str(window)],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200_000)
    parser.add_argument("--forks", type=int, default=5)
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=DIR")
    args = parser.parse_args()
    trees = [tuple(x.split("=", 1)) for x in args.src] or [("", "")]
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for mode in MODES:
        for label, src in trees:
            if mode == "none" and (label, src) != trees[0]:
                continue  # no monitor: the source tree does not matter
            rows[(label, mode)] = run_mode(mode, args.objects, args.forks, args.window, src)
    base = rows[(trees[0][0], "none")]
    print(f"{args.objects:,} live objects, {args.forks} forks per mode, medians")
    print(
        f"{'tree':<8}{'mode':<12}{'fork return':>14}{'× none':>9}{'slowest request':>18}{'× none':>9}"
    )
    for (label, mode), row in rows.items():
        print(
            f"{label or '-':<8}{mode:<12}{row['fork_return'] * 1e3:>11.2f} ms"
            f"{row['fork_return'] / base['fork_return']:>8.1f}×"
            f"{row['first_requests'] * 1e3:>15.2f} ms"
            f"{row['first_requests'] / base['first_requests']:>8.1f}×"
        )


if __name__ == "__main__":
    main()
