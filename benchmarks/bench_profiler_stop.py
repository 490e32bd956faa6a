"""How long does a ``Profiler`` take to stop when its block leaves many objects alive?

Issue #15's case: a traced ``Profiler`` whose block leaves 100,000 small objects
alive took 16 s to ``stop()`` (13.5 s in ``fnmatch``). For each size, in a fresh
interpreter, a traced ``Profiler`` runs a block that keeps that many small objects
(lists, dicts and strings from a few lines), then times, in the same process and
heap:

- ``take_snapshot``: ``tracemalloc.take_snapshot()`` of that heap (the baseline);
- ``stop``: ``Profiler.stop()``, the whole session stop (its own snapshot, grouping,
  sites, components, the session), and checks that its top 3 sites are the block's
  3 lines, holding the objects.

The ratio ``stop / take_snapshot`` is printed beside the seconds; sizes run one after
another (not alternated: each needs its own heap), so compare ratios, not seconds.

    python benchmarks/bench_profiler_stop.py                    # 100,000 objects
    python benchmarks/bench_profiler_stop.py --objects 100000,1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, sys, time, tracemalloc
from memlens.profiling import Profiler

n = int(sys.argv[1])
profiler = Profiler("bench", interval=1.0).start()
kept = []
for i in range(n // 3):
    kept.append([i])  # SITE
    kept.append({"i": i})
    kept.append(f"item-{i}")
start = time.perf_counter()
snapshot = tracemalloc.take_snapshot()
snap_s = time.perf_counter() - start
del snapshot
start = time.perf_counter()
session = profiler.stop()
stop_s = time.perf_counter() - start
lines = sorted(s.lineno for s in session.top_sites[:3] if s.filename == "<string>")
count = sum(s.count for s in session.top_sites[:3])
print(json.dumps({"blocks": len(kept), "snapshot": snap_s, "stop": stop_s,
                  "lines": lines, "count": count}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", default="100000", help="comma-separated sizes")
    args = parser.parse_args()
    site = CHILD.splitlines().index("    kept.append([i])  # SITE")
    print(f"{'objects':>10}{'take_snapshot':>15}{'stop':>9}{'ratio':>8}  top sites")
    for n in (int(x) for x in args.objects.split(",")):
        run = subprocess.run(
            [sys.executable, "-c", CHILD, str(n)], capture_output=True, text=True, check=False
        )
        if run.returncode != 0:
            raise SystemExit(f"child failed for {n}:\n{run.stderr}")
        r = json.loads(run.stdout.splitlines()[-1])
        block = [site + 1, site + 2, site + 3]
        ok = "the block's 3 lines" if r["lines"] == block else f"lines {r['lines']} (wrong)"
        print(
            f"{r['blocks']:>10,}{r['snapshot']:>14.2f}s{r['stop']:>8.2f}s"
            f"{r['stop'] / r['snapshot']:>7.2f}x  {ok}, {r['count']:,} blocks"
        )


if __name__ == "__main__":
    main()
