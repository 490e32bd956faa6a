"""What the sampler's allocator hooks cost, interleaved in one process.

A loaded machine moves a whole run's CPU time by more than the hooks cost, so this
runs the workloads of ``bench_sampler_peers.py`` in short chunks (~20-40 ms),
alternately with the sampler started and stopped, in one interpreter (same heap,
same imports, no launcher), and prints the median of the per-pair CPU ratios
(hooked / bare), their quartiles, and the ratio of the sums. Load that changes
between two chunks of a pair moves that pair only; the order inside a pair
alternates. Nothing but the hooks differs between the two halves of a pair: the
sampler starts with a fixed interval (512 KiB: the hooks' fast path and a few
samples per chunk) or, with ``--interval auto``, the automatic one.

    python benchmarks/bench_sampler_hooks.py                   # 60 pairs per workload
    python benchmarks/bench_sampler_hooks.py --pairs 100 --interval 4096
    python benchmarks/bench_sampler_hooks.py --interval auto --workloads alloc

``--once bare|hooked --turns N`` runs one workload N turns once, with the sampler
started (at ``--interval``) or not, and prints nothing else: for an instruction count
that load does not move, run it under callgrind with N turns and with 0, and take
the difference (the loop's own instructions; start-up cancels out):

    valgrind --tool=callgrind python3.11 benchmarks/bench_sampler_hooks.py \
        --once hooked --turns 60000 --workloads alloc

With ``--interval auto`` every chunk starts the automatic interval afresh, at its
4 KiB floor until the cost governor has measured a few windows: it overstates what
the automatic interval costs over a long run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sampler_peers import WORKLOADS  # noqa: E402

CHUNK_TURNS = 20  # chunks per full workload run: ~20-40 ms each here


def pairs(name: str, count: int, interval: int) -> list[tuple[float, float]]:
    """``count`` (hooked, bare) CPU times of one chunk of workload ``name``."""
    from memlens.heap.native_ext import load_extension
    from memlens.heap.sampler import AUTO, AUTO_BUDGET, AUTO_MAX, AUTO_MIN, AUTO_SAMPLES

    sampler = load_extension("_sampler")
    if sampler is None:
        raise SystemExit("memlens._sampler is not built: nothing to measure")
    space: dict = {}
    exec(textwrap.dedent(WORKLOADS[name]), space)  # noqa: S102 - our own workload text
    work, turns = space["work"], space["ITER"] // CHUNK_TURNS
    work(turns)  # warm up: caches, free lists, the request workload's window
    options = (
        {"interval": AUTO_MIN, "auto": AUTO_SAMPLES, "min_interval": AUTO_MIN}
        | {"max_interval": AUTO_MAX, "budget": AUTO_BUDGET}
        if interval == AUTO
        else {"interval": interval}
    )
    out = []
    for i in range(count):
        cpu = {}
        for hooked in (True, False) if i % 2 else (False, True):
            if hooked:
                sampler.start(seed=i + 1, **options)
            start = time.process_time()
            work(turns)
            cpu[hooked] = time.process_time() - start
            if hooked:
                sampler.stop()
        out.append((cpu[True], cpu[False]))
    return out


def once(name: str, hooked: bool, turns: int, interval: int) -> None:
    """One run of ``turns`` turns of workload ``name``, hooked or not (for callgrind)."""
    # Imported either way: its modules' objects are traversed by every GC pass.
    from memlens.heap.sampler import AllocationSampler

    space: dict = {}
    exec(textwrap.dedent(WORKLOADS[name]), space)  # noqa: S102 - our own workload text
    if hooked:
        sampler = AllocationSampler(interval=interval or None, seed=1).start()
        space["work"](turns)
        sampler.stop()
    else:
        space["work"](turns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=60)
    parser.add_argument("--workloads", default="alloc,request")
    parser.add_argument(
        "--interval", default="524288", help="mean bytes between samples, or 'auto'"
    )
    parser.add_argument("--once", choices=("bare", "hooked"), help="one run, for callgrind")
    parser.add_argument("--turns", type=int, default=0, help="with --once: loop turns")
    args = parser.parse_args()
    unknown = [w for w in args.workloads.split(",") if w not in WORKLOADS]
    if unknown or args.pairs < 4:
        parser.error(f"workloads are {', '.join(WORKLOADS)}; --pairs at least 4")
    if args.interval == "auto":
        interval = 0
    elif args.interval.isdigit() and int(args.interval) >= 1:
        interval = int(args.interval)
    else:
        parser.error(f"--interval {args.interval!r}: a whole number of bytes >= 1, or auto")
    if args.once:
        once(args.workloads.split(",")[0], args.once == "hooked", args.turns, interval)
        return
    print(f"Python {sys.version.split()[0]}, {args.pairs} pairs, interval {args.interval}")
    for name in args.workloads.split(","):
        got = pairs(name, args.pairs, interval)
        ratios = [hooked / bare for hooked, bare in got]
        low, _, high = statistics.quantiles(ratios, n=4)
        chunk = statistics.median(bare for _, bare in got) * 1000
        total = sum(h for h, _ in got) / sum(b for _, b in got)
        print(
            f"  {name:<8} hooked/bare median {statistics.median(ratios):.3f}x"
            f" (quartiles {low:.3f}-{high:.3f}), sums {total:.3f}x, chunk {chunk:.0f} ms"
        )


if __name__ == "__main__":
    main()
