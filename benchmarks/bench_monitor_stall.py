"""Does the monitor's sampling cadence hold while it snapshots a big heap?

Issue #15 saw the monitor in ``advanced``/``debug`` mode freeze its sampling thread
for 42 s on a ~20 MB heap of 320k blocks, so a threshold crossed meanwhile raised
nothing. For each mode, in a fresh interpreter: start the monitor (snapshots every
``--snapshot-interval`` s, so several fall in the run), allocate ``--blocks`` live
blocks (traced in ``debug``), then for ``--seconds`` record the time of every sample
from a sample listener while the main thread keeps serving small "requests".

Printed per mode: the sampling interval, the samples taken, the largest and the
99th-percentile gap between two samples, how many gaps exceeded two intervals (a
slip of more than one interval, the issue's target), and the monitor's own count of
snapshots taken, skipped and cut short. ``tracemalloc.take_snapshot()`` copies the
traces in one C call holding the GIL, so in ``debug`` a gap can grow by that copy.

    python benchmarks/bench_monitor_stall.py
    python benchmarks/bench_monitor_stall.py --blocks 320000 --seconds 12 --modes debug
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, statistics, sys, time
import memlens
from memlens.service.readout import debug_snapshot

mode, blocks, seconds, snap_every = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
config = memlens.load_config(None, mode=mode, persist_history=False, snapshot_interval=snap_every)
mon = memlens.Monitor(config)
times = []
mon.add_sample_listener(lambda t, values: times.append(time.monotonic()))
mon.start()
heap = [{"k": i, "v": [i]} for i in range(blocks // 3)]  # ~3 blocks each
start = time.monotonic()
served = 0
while time.monotonic() - start < seconds:
    json.loads(json.dumps({"i": served, "x": [1, 2, 3]}))
    served += 1
snaps = debug_snapshot(mon)["snapshots"]
mon.stop()
times = [t for t in times if t >= start]
gaps = sorted(b - a for a, b in zip(times, times[1:]))
interval = config.effective_interval
print(json.dumps({
    "interval": interval, "samples": len(times), "max": gaps[-1] if gaps else 0.0,
    "p99": gaps[int(0.99 * (len(gaps) - 1))] if gaps else 0.0,
    "slips": sum(g > 2 * interval for g in gaps),
    "snapshots": snaps, "heap": len(heap), "served": served,
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=320_000, help="live blocks to hold")
    parser.add_argument("--seconds", type=float, default=12.0, help="measured run per mode")
    parser.add_argument("--snapshot-interval", type=float, default=2.0, help="seconds")
    parser.add_argument("--modes", default="standard,advanced,debug")
    args = parser.parse_args()
    print(
        f"{args.blocks:,} live blocks, {args.seconds:g} s per mode, "
        f"a snapshot every {args.snapshot_interval:g} s"
    )
    head = f"{'mode':<10}{'interval':>9}{'samples':>8}{'max gap':>9}{'p99 gap':>9}"
    print(f"{head}{'> 2 intervals':>15}  snapshots taken/skipped/cut short")
    for mode in args.modes.split(","):
        cmd = [sys.executable, "-c", CHILD, mode, str(args.blocks), str(args.seconds)]
        run = subprocess.run(
            [*cmd, str(args.snapshot_interval)], capture_output=True, text=True, check=False
        )
        if run.returncode != 0:
            raise SystemExit(f"{mode} failed:\n{run.stderr}")
        r = json.loads(run.stdout.splitlines()[-1])
        snaps = r["snapshots"]
        print(
            f"{mode:<10}{r['interval']:>8.2f}s{r['samples']:>8}{r['max']:>8.2f}s"
            f"{r['p99']:>8.2f}s{r['slips']:>15}  {snaps.get('taken')}/"
            f"{snaps.get('skipped')}/{snaps.get('cut_short')}"
        )


if __name__ == "__main__":
    main()
