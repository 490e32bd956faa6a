"""Many workers on one shared context memory: is any item lost?

N worker processes open the same ``SharedContextMemory`` session and each adds M
messages with unique texts, syncing after every one; every fifth message they also
put a shared cache key (``status``: all workers race for it), and two workers fit the
whole window into a small budget halfway through (400 tokens, or the least its last
turns need: concurrent summaries and evictions of each other's items). At the end
every text a worker added must be in the store: live in the window with that text,
or in the shared archive under its id with that text. Anything else is "silently
lost".

    python benchmarks/shared_context.py                     # 8 workers x 60 messages, both backends
    python benchmarks/shared_context.py --workers 4 --messages 20 --backend sqlite

``tests/store/test_shared_context_memory.py`` runs the same check, smaller.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Loaded by path from the tests too, so the sibling helper is found by its folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_redis import redis_url  # noqa: E402
from _bench_workers import run_workers, sync_until_success  # noqa: E402

SESSION = "fleet-window"


def text_of(writer: str, i: int) -> str:
    return f"{writer} message {i}: the ledger refund for order {i * 7} needs a second look."


def worker(url: str, writer: str, messages: int, fit_budget: int) -> dict:
    """One worker's session; returns what it added (by id) and what its syncs said."""
    from memlens.context.shared import DistributedMemoryManager, SharedContextMemory

    manager = DistributedMemoryManager(url, writer_id=writer, snapshot_every=200)
    memory = SharedContextMemory(manager, SESSION, budget=1_000_000)
    added: dict[str, str] = {}
    conflicts = failed = syncs = 0
    started = time.perf_counter()
    for i in range(messages):
        role = "user" if i % 2 == 0 else "assistant"
        text = text_of(writer, i)
        added[memory.add_message(role, text).id] = text
        if i % 5 == 4:
            status = f"{writer} status after {i}"
            added[memory.cache_put("status", status).id] = status
        if fit_budget and i == messages // 2:
            # As small as asked, or as small as the last turns allow (how many items
            # they hold depends on how the workers' messages interleaved).
            budget = min(fit_budget, memory.tokens)
            memory.fit(max(budget, memory.plan(budget).after))
        results, failures = sync_until_success(memory.sync)
        syncs += len(results)
        failed += failures
        conflicts += sum(len(result.conflicts) for result in results)
    seconds = time.perf_counter() - started
    manager.close()
    return {
        "writer": writer,
        "added": added,
        "conflicts": conflicts,
        "failed_syncs": failed,
        "syncs": syncs,
        "seconds": seconds,
    }


@dataclass
class Outcome:
    backend: str
    workers: int
    added: int
    live: int
    archived_only: int
    silently_lost: int
    conflicts: int
    syncs: int
    seconds: float
    window_items: int
    window_tokens: int

    @property
    def syncs_per_second(self) -> float:
        return self.syncs / self.seconds if self.seconds else 0.0


def account(url: str, tallies: list[dict]) -> tuple[int, int, int, int, int]:
    """(live, archived only, silently lost, window items, window tokens) for every added text."""
    from memlens.context.shared.archive import RecordArchive
    from memlens.context.shared.memory import archive_namespace, read_shared_memory
    from memlens.core.errors import StoreError
    from memlens.store import open_record_store

    store = open_record_store(url, create=False, readonly=True)
    try:
        view = read_shared_memory(store, SESSION)
        archive = RecordArchive(store, archive_namespace(SESSION))
        shown = {item.entry.id: item.entry.content for item in view.items}
        live = archived = lost = 0
        for tally in tallies:
            for entry_id, text in tally["added"].items():
                if shown.get(entry_id) == text:
                    live += 1
                    continue
                try:
                    kept = archive.get(entry_id).content == text
                except StoreError:
                    kept = False
                archived += kept
                lost += not kept
        return live, archived, lost, len(view.items), view.tokens
    finally:
        store.close()


def run(url: str, backend: str, workers: int, messages: int, fit_budget: int = 400) -> Outcome:
    """Start the workers at once, wait for them, and account for every added item."""
    tallies = run_workers(
        __file__,
        [[url, f"w{n}", str(messages), str(fit_budget if n < 2 else 0)] for n in range(workers)],
    )
    live, archived, lost, items, tokens = account(url, tallies)
    return Outcome(
        backend,
        workers,
        sum(len(t["added"]) for t in tallies),
        live,
        archived,
        lost,
        sum(t["conflicts"] for t in tallies),
        sum(t["syncs"] for t in tallies),
        max(t["seconds"] for t in tallies),
        items,
        tokens,
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, writer, messages, fit_budget = sys.argv[2:6]
        print(json.dumps(worker(url, writer, int(messages), int(fit_budget))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--backend", choices=["sqlite", "redis", "both"], default="both")
    args = parser.parse_args()
    outcomes = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend in ("sqlite", "both"):
            url = f"sqlite:///{Path(tmp) / 'shared.db'}"
            outcomes.append(run(url, "sqlite", args.workers, args.messages))
        if args.backend in ("redis", "both"):
            with redis_url(Path(tmp)) as url:
                outcomes.append(run(url, "redis", args.workers, args.messages))
    print(
        f"{args.workers} processes x {args.messages} messages (+ a shared cache key every 5, "
        "two concurrent fits), one shared context memory, sync after every message"
    )
    print(
        f"{'backend':8} {'items added':>11} {'live':>5} {'archived':>9} {'silently lost':>14} "
        f"{'conflicts':>10} {'syncs/s':>8} {'window':>14}"
    )
    for o in outcomes:
        print(
            f"{o.backend:8} {o.added:11d} {o.live:5d} {o.archived_only:9d} "
            f"{o.silently_lost:14d} {o.conflicts:10d} {o.syncs_per_second:8.0f} "
            f"{o.window_items:5d} / {o.window_tokens:,} tok"
        )
    if any(o.silently_lost for o in outcomes):
        raise SystemExit("FAIL: some items were lost silently")


if __name__ == "__main__":
    main()
