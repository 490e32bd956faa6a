"""Event-loop lag of a full ``gc.collect()`` against the ladder's short-pause collection, side by side.

A service loads 200,000 session objects at start-up (400k tracked objects), then
runs an asyncio loop that handles a ~2 KB JSON "request" every millisecond on the
main thread. A second thread, like the recovery ladder's, runs ``--rounds``
collections 100 ms apart; before each, it leaves cyclic garbage in the oldest
generation (``--pairs`` parent/child request pairs with a 1 KB payload, promoted by a
young collection, then dropped), which only a full pass can reclaim.

Variants, each in a fresh interpreter with the same heap:

- ``full``: ``gc.collect()``, what the ladder's GC step did before;
- ``full, frozen``: the same after ``freeze_long_lived()`` at start-up;
- ``short-pause, frozen``: ``ShortPauseCollector(max_pause=5 ms)`` after
  ``freeze_long_lived()``: the young generations, then a full pass that scans
  only objects allocated since start-up;
- ``short-pause, unfrozen``: the collector on the unfrozen heap: it predicts the
  full pass is too long and skips it (the garbage stays for the interpreter's own
  next full collection).

Loop lag is the lateness of a tick (actual wake-up minus the scheduled one). *lag
max* is the worst lateness of ticks whose wait overlapped a collection; *lag p99*
is over every tick while the rounds ran. Both are printed in ms and as a ratio to
``full`` from the same run, next to the same loop's worst lag in a quiet second.

    python benchmarks/remedies/bench_gc_pause.py              # ~15 s
    python benchmarks/remedies/bench_gc_pause.py --rounds 20 --json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
from typing import Any

from _harness import (  # this folder is on sys.path when run as a script
    beside_a_loop,
    in_fresh_interpreter,
)

VARIANTS = ("full", "full, frozen", "short-pause, frozen", "short-pause, unfrozen")


class Session:
    def __init__(self, i: int) -> None:
        self.id = i
        self.user = f"user-{i}"
        self.tags = [i % 7, i % 11]


class Request:
    def __init__(self, parent: Request | None = None) -> None:
        self.parent = parent
        self.children: list[Request] = []
        self.body = bytes(1000)
        if parent is not None:
            parent.children.append(self)


def leave_old_garbage(pairs: int = 2000) -> None:
    """Cyclic request pairs, promoted past the young generations, then dropped."""
    batch = []
    for _ in range(pairs):
        parent = Request()
        Request(parent)
        batch.append(parent)
    gc.collect(1)  # survivors of generation 1 move to the oldest one
    del batch


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def run_variant(name: str, rounds: int, pairs: int) -> dict[str, Any]:
    from memlens.remedies.collection import ShortPauseCollector, freeze_long_lived

    sessions = [Session(i) for i in range(200_000)]  # the start-up heap
    gc.collect()
    if "frozen" in name and "unfrozen" not in name:
        freeze_long_lived()
    collector = ShortPauseCollector(0.005)

    windows: list[tuple[float, float]] = []
    collected: list[int] = []
    pauses: list[float] = []
    skipped: list[str] = []

    def collections() -> None:
        sys.setswitchinterval(0.0005)  # as the ladder does while it runs
        for _ in range(rounds):
            time.sleep(0.1)
            leave_old_garbage(pairs)
            began = time.perf_counter()
            if name.startswith("full"):
                collected.append(gc.collect())
                pauses.append(time.perf_counter() - began)
            else:
                result = collector.collect()
                collected.append(result.collected)
                pauses.append(result.longest_pause)
                if result.skipped:
                    skipped.append(result.skipped)
            windows.append((began, time.perf_counter()))

    ticks, (quiet_from, quiet_to) = beside_a_loop(collections, warmup=0.3)
    # A tick is delayed by a collection when its wait overlaps the collection.
    inside = [late for at, late in ticks if any(at <= b and at + late >= a for a, b in windows)]
    phase = [late for at, late in ticks if windows and windows[0][0] <= at <= windows[-1][1]]
    quiet = [late for at, late in ticks if quiet_from <= at <= quiet_to]
    del sessions
    return {
        "variant": name,
        "rounds": rounds,
        "garbage_objects_per_round": pairs * 4,
        "lag_max_ms": max(inside, default=0.0) * 1e3,
        "lag_p99_ms": p99(phase) * 1e3,
        "ticks_inside": len(inside),
        "quiet_max_ms": max(quiet, default=0.0) * 1e3,
        "quiet_p99_ms": p99(quiet) * 1e3,
        "pause_max_ms": max(pauses, default=0.0) * 1e3,
        "collected_per_round": sum(collected) / max(1, len(collected)),
        "full_pass_skipped": len(skipped),
        "skip_reason": skipped[0] if skipped else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=2000, help="garbage request pairs per round")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--variant", choices=VARIANTS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.rounds, args.pairs)))
        return
    results = [
        in_fresh_interpreter(
            __file__, "--variant", name, "--rounds", str(args.rounds), "--pairs", str(args.pairs)
        )
        for name in VARIANTS
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    base = results[0]
    print(
        f"{'variant':<24}{'lag max':>10}{'x full':>8}{'lag p99':>10}{'x full':>8}"
        f"{'pause max':>11}{'collected/round':>17}{'quiet max':>11}"
    )
    for r in results:
        print(
            f"{r['variant']:<24}{r['lag_max_ms']:>7.1f} ms{r['lag_max_ms'] / base['lag_max_ms']:>8.3f}"
            f"{r['lag_p99_ms']:>7.1f} ms{r['lag_p99_ms'] / base['lag_p99_ms']:>8.3f}"
            f"{r['pause_max_ms']:>8.1f} ms{r['collected_per_round']:>17.0f}"
            f"{r['quiet_max_ms']:>8.1f} ms"
        )
        if r["skip_reason"]:
            print(f"  full pass skipped in {r['full_pass_skipped']} rounds: {r['skip_reason']}")


if __name__ == "__main__":
    main()
