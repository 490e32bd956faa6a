"""Concurrent updates to one shared memory: are any lost?

N worker processes each make U updates to a shared session through their own
``DistributedMemoryManager`` and sync after every update. Each update writes a
unique value ``{"w": writer, "i": i}`` to one of K shared keys, so the store's
journal says exactly which updates were merged; each worker reports the updates it
lost in conflicts. Every update must be merged or reported lost, never both and
never neither ("silently lost").

    python benchmarks/shared_updates.py                       # 8 x 1000 on SQLite and Redis
    python benchmarks/shared_updates.py --workers 4 --updates 100 --backend sqlite

The test ``tests/store/test_concurrent_updates.py`` runs the same check, smaller.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Loaded by path from the tests too, so the sibling helper is found by its folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_redis import redis_url  # noqa: E402
from _bench_workers import run_workers, sync_until_success  # noqa: E402

SESSION = "fleet-session"


def worker(url: str, writer: str, updates: int, keys: int, seed: int, strategy: str) -> dict:
    """Run one worker's updates; return its tally."""
    from memlens.context.shared import DistributedMemoryManager

    manager = DistributedMemoryManager(
        url,
        writer_id=writer,
        strategy=strategy,
        snapshot_every=0,  # type: ignore[arg-type]
    )
    rng = random.Random(seed)
    lost: list[int] = []
    conflicts = retries = failed_syncs = 0
    started = time.perf_counter()
    for i in range(updates):
        manager.set(SESSION, f"k{rng.randrange(keys)}", {"w": writer, "i": i})
        results, failures = sync_until_success(lambda: manager.sync(SESSION))
        failed_syncs += failures
        for result in results:
            conflicts += len(result.conflicts)
            retries += result.retries
            for conflict in result.conflicts:
                mine = conflict.local_value
                if (
                    conflict.resolution == "remote"
                    and isinstance(mine, dict)
                    and mine.get("w") == writer
                ):
                    lost.append(int(mine["i"]))
    seconds = time.perf_counter() - started
    manager.close()
    return {
        "writer": writer,
        "updates": updates,
        "lost_in_conflicts": sorted(set(lost)),
        "conflicts": conflicts,
        "retries": retries,
        "failed_syncs": failed_syncs,
        "seconds": seconds,
    }


@dataclass
class Outcome:
    backend: str
    workers: int
    updates: int
    merged: int
    reported_lost: int
    silently_lost: int
    double_counted: int
    conflicts: int
    retries: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.workers * self.updates / self.seconds if self.seconds else 0.0


def run(url: str, backend: str, workers: int, updates: int, keys: int, strategy: str) -> Outcome:
    """Start the workers at once, wait for them, and account for every update."""
    from memlens.store import open_record_store

    started = time.perf_counter()
    tallies = run_workers(
        __file__,
        [[url, f"w{n}", str(updates), str(keys), str(1000 + n), strategy] for n in range(workers)],
    )
    # Throughput over the workers' own update loops (process start-up excluded).
    seconds = max(t["seconds"] for t in tallies) if tallies else time.perf_counter() - started
    store = open_record_store(url)
    journal = store.journal(SESSION)
    if journal.damaged:
        raise SystemExit(f"journal damaged: {journal.damaged[:3]}")
    merged: dict[str, set[int]] = {}
    for entry in journal.entries:
        value: Any = entry.record.value
        if isinstance(value, dict) and "w" in value:
            merged.setdefault(str(value["w"]), set()).add(int(value["i"]))
    store.close()
    silently = double = reported = merged_total = 0
    for tally in tallies:
        mine = merged.get(tally["writer"], set())
        lost = set(tally["lost_in_conflicts"])
        every = set(range(tally["updates"]))
        silently += len(every - mine - lost)
        double += len(mine & lost)
        reported += len(lost)
        merged_total += len(mine)
    return Outcome(
        backend,
        workers,
        updates,
        merged_total,
        reported,
        silently,
        double,
        sum(t["conflicts"] for t in tallies),
        sum(t["retries"] for t in tallies),
        seconds,
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, writer, updates, keys, seed, strategy = sys.argv[2:8]
        print(json.dumps(worker(url, writer, int(updates), int(keys), int(seed), strategy)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--strategy", default="timestamp")
    parser.add_argument("--backend", choices=["sqlite", "redis", "both"], default="both")
    args = parser.parse_args()
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend in ("sqlite", "both"):
            url = f"sqlite:///{Path(tmp) / 'shared.db'}"
            outcomes.append(
                run(url, "sqlite", args.workers, args.updates, args.keys, args.strategy)
            )
        if args.backend in ("redis", "both"):
            with redis_url(Path(tmp)) as url:
                outcomes.append(
                    run(url, "redis", args.workers, args.updates, args.keys, args.strategy)
                )
                print(outcomes[-1], flush=True)
    print(
        f"{args.workers} processes x {args.updates} updates to {args.keys} shared keys, "
        f"strategy {args.strategy}, sync after every update"
    )
    print(
        f"{'backend':8} {'updates/s':>10} {'merged':>7} {'lost in conflicts':>18} "
        f"{'silently lost':>14} {'conflicts':>10} {'retries':>8}"
    )
    for o in outcomes:
        print(
            f"{o.backend:8} {o.per_second:10.0f} {o.merged:7d} {o.reported_lost:18d} "
            f"{o.silently_lost:14d} {o.conflicts:10d} {o.retries:8d}"
        )
    if any(o.silently_lost or o.double_counted for o in outcomes):
        raise SystemExit("FAIL: some updates were lost silently or counted twice")


if __name__ == "__main__":
    main()
