"""The recovery ladder on two sick services: bytes reclaimed and event-loop blocking per step.

Each scenario runs in a fresh interpreter (so one does not inherit the other's heap):

- ``fragmented``: a service that kept one in eight of 300,000 1 KB buffers. glibc
  holds the freed seven as free memory inside its heap, so RSS stays high; the
  figure that matters is how much of that *fragmented free memory* (``mallinfo2``
  ``fordblks``) the ladder gives back to the OS.
- ``cache-bloated``: a service whose memo (``memoize``) and a plain
  ``functools.lru_cache`` hold ~200 MB of rendered pages next to 200,000 live
  session objects. The ``lru_cache`` is cleared by a rung of its own, so its
  one-call ``cache_clear()`` shows apart from the memo's sliced clearing (a user's
  clearer, shown for comparison: memlens cannot slice a C call).
- ``cache-bloated+freeze``: the same service, which called
  ``GarbageCollectionOptimizer.freeze_after_preload()`` once its sessions were
  loaded (as a prefork server would after preloading), so full collections no
  longer scan them.

While the ladder runs on its ``memlens-recovery`` thread, the main thread runs an
asyncio loop that handles a "request" every millisecond (a JSON body of about
2 KB, so it calls malloc like a real handler does). Blocking is the lateness of
the loop's ticks (actual wake-up minus the scheduled one); for each step the
maximum lateness of ticks scheduled inside it is printed next to the same
figure for a quiet period of the same loop (the noise floor of the machine).

    python benchmarks/remedies/bench_ladder.py            # both scenarios, ~20 s
    python benchmarks/remedies/bench_ladder.py --json
"""

from __future__ import annotations

import argparse
import functools
import json
from typing import Any

from _harness import (  # this folder is on sys.path when run as a script
    beside_a_loop,
    in_fresh_interpreter,
)

MB = 1024 * 1024
SCENARIOS = ("fragmented", "cache-bloated", "cache-bloated+freeze")


def build_fragmented() -> list[Any]:
    blocks = [bytes(1000) + i.to_bytes(4, "little") for i in range(300_000)]
    kept = blocks[::8]
    del blocks
    return kept


class Session:
    def __init__(self, i: int) -> None:
        self.id = i
        self.user = f"user-{i}"
        self.tags = [i % 7, i % 11]


def build_cache_bloated(freeze: bool = False) -> list[Any]:
    from memlens.remedies import GarbageCollectionOptimizer, memoize

    sessions = [Session(i) for i in range(200_000)]  # loaded at start-up
    if freeze:
        GarbageCollectionOptimizer.freeze_after_preload()

    @memoize(max_entries=None, max_bytes=None, sizeof=len)
    def render(n: int) -> bytes:
        return bytes(2000 + n % 3000) + n.to_bytes(4, "little")

    @functools.cache
    def legacy(n: int) -> bytes:
        return bytes(1500 + n % 2000) + n.to_bytes(4, "little")

    for i in range(40_000):
        render(i)
        legacy(i)
    return [render, legacy, sessions]


def run_scenario(name: str) -> dict[str, Any]:
    import gc

    from memlens.remedies.allocator import allocator_stats
    from memlens.remedies.ladder import RecoveryLadder
    from memlens.remedies.readings import read_memory

    if name == "fragmented":
        held = build_fragmented()
    else:
        held = build_cache_bloated(freeze=name.endswith("+freeze"))
    ladder = RecoveryLadder(min_interval=0)
    if name.startswith("cache-bloated"):
        # Its own rung, so the stdlib cache's one-call clear is shown apart from memlens's
        # sliced clearing of the memo: a comparison, not one of memlens's steps.
        ladder.add_step("stdlib lru_cache (compare)", held[1].cache_clear, cost=11)
    gc.collect()
    start = read_memory()
    alloc = allocator_stats()
    fragmented_free = alloc.free if alloc is not None else None

    box: list[Any] = []
    ticks, (quiet_from, quiet_to) = beside_a_loop(lambda: box.append(ladder.run(name)))

    run = box[0]
    freed = sum(max(0, s.reclaimed.allocator or 0) for s in run.steps if s.ran)
    reclaimable = (fragmented_free + freed) if fragmented_free is not None else None

    def worst(a: float, b: float) -> float:
        inside = [late for at, late in ticks if a <= at <= b]
        return max(inside, default=0.0)

    steps = []
    for s in run.steps:
        steps.append(
            {
                "step": s.step,
                "ran": s.ran,
                "detail": s.detail,
                "rss_reclaimed": s.reclaimed.rss,
                "allocator_reclaimed": s.reclaimed.allocator,
                "duration_ms": s.duration * 1e3,
                "longest_hold_ms": s.longest_hold * 1e3,
                "loop_blocked_ms": worst(s.started, s.started + s.duration) * 1e3 if s.ran else 0.0,
            }
        )
    result = {
        "scenario": name,
        "rss_before": start.rss,
        "allocator_in_use_before": start.allocator_in_use,
        "fragmented_free": fragmented_free,
        "rss_reclaimed": run.reclaimed.rss,
        # What could go back to the OS: memory free inside the allocator at the
        # start, plus what the steps freed into it (cleared caches, collected cycles).
        "reclaimable": reclaimable,
        "reclaimed_share": run.reclaimed.rss / reclaimable if reclaimable else None,
        "noise_floor_ms": worst(quiet_from, quiet_to) * 1e3,
        "steps": steps,
    }

    del held
    return result


def show(r: dict[str, Any]) -> None:
    print(f"\n== {r['scenario']}: RSS {r['rss_before'] / MB:.0f} MiB", end="")
    if r["fragmented_free"] is not None:
        print(f", fragmented free (mallinfo2 fordblks) {r['fragmented_free'] / MB:.0f} MiB", end="")
    print()
    print(
        f"{'step':<28}{'RSS freed':>12}{'alloc freed':>13}{'took':>10}{'longest hold':>14}"
        f"{'loop blocked':>14}"
    )
    for s in r["steps"]:
        if not s["ran"]:
            print(f"{s['step']:<28}  skipped: {s['detail']}")
            continue
        alloc = s["allocator_reclaimed"]
        alloc_text = f"{alloc / MB:.1f} MiB" if alloc is not None else "-"
        print(
            f"{s['step']:<28}{s['rss_reclaimed'] / MB:>8.1f} MiB{alloc_text:>13}"
            f"{s['duration_ms']:>8.1f} ms{s['longest_hold_ms']:>11.1f} ms"
            f"{s['loop_blocked_ms']:>11.1f} ms"
        )
    share = r["reclaimed_share"]
    print(
        f"total RSS reclaimed {r['rss_reclaimed'] / MB:.1f} MiB"
        + (
            f" = {share:.0%} of the reclaimable {r['reclaimable'] / MB:.0f} MiB "
            "(free in the allocator at the start + freed by the steps)"
            if share is not None
            else ""
        )
        + f"; loop noise floor (quiet, same loop) {r['noise_floor_ms']:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--scenario", choices=SCENARIOS)
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(run_scenario(args.scenario)))
        return
    results = [in_fresh_interpreter(__file__, "--scenario", name) for name in SCENARIOS]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        show(r)


if __name__ == "__main__":
    main()
