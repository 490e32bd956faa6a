"""Lazy vs eager opening of a large stored memory session.

Stores one session of N items (~1 KB JSON each) in a record store, then opens it
both ways, side by side, several times in alternating order:

- **eager**: ``open_eager`` reads, verifies and decodes every record up front;
- **lazy**: ``open_lazy`` reads the key index only; each value is a
  ``lazy_object_proxy`` that reads and verifies its record on first use.

Prints the median time to first use (open + use one value), the time to use every
value, and the Python memory held after opening and first use (tracemalloc).

    python benchmarks/bench_lazy.py                       # 10,000 items, SQLite
    python benchmarks/bench_lazy.py --items 10000 --backend redis
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from memlens.context.shared.lazy import open_eager, open_lazy
from memlens.store import open_record_store
from memlens.store.records import PutRequest, RecordStore

ROOT = Path(__file__).resolve().parents[1]


def fill(store: RecordStore, items: int) -> None:
    for start in range(0, items, 1000):
        store.put_many(
            "big",
            [
                PutRequest(f"item-{i:05d}", {"id": i, "text": f"note {i} " * 120, "tags": ["a"]})
                for i in range(start, min(items, start + 1000))
            ],
        )


def _open(store: RecordStore, how: str) -> Any:
    return open_eager(store, "big") if how == "eager" else open_lazy(store, "big")


def measure(store: RecordStore, how: str, probe: str) -> dict[str, float]:
    """Times without tracing (tracemalloc slows allocation), then memory in its own pass."""
    gc.collect()
    started = time.perf_counter()
    memory = _open(store, how)
    assert memory[probe]["text"][:4] == "note"  # first use of one value
    first_use = time.perf_counter() - started
    total = sum(len(memory[k]["text"]) for k in memory)
    all_use = time.perf_counter() - started
    assert total > 0
    del memory
    gc.collect()
    tracemalloc.start()
    memory = _open(store, how)
    assert memory[probe]["text"][:4] == "note"
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del memory
    return {"first_use": first_use, "all_use": all_use, "held": float(held)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", choices=["sqlite", "redis"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if args.backend == "redis":
            sys.path.insert(0, str(ROOT))
            from tests.redis_server import RedisServer, redis_binary

            binary = redis_binary()
            if binary is None:
                raise SystemExit("redis-server is not installed")
            server = RedisServer(binary, Path(tmp))
            server.start()
            url = server.url
        else:
            url = f"sqlite:///{Path(tmp) / 'big.db'}"
        try:
            store = open_record_store(url)
            fill(store, args.items)
            probe = f"item-{args.items // 2:05d}"
            results: dict[str, list[dict[str, float]]] = {"eager": [], "lazy": []}
            for repeat in range(args.repeats):
                order = ("eager", "lazy") if repeat % 2 == 0 else ("lazy", "eager")
                for how in order:
                    results[how].append(measure(store, how, probe))
            store.close()
        finally:
            if server is not None:
                server.stop()

    def med(how: str, key: str) -> float:
        return statistics.median(r[key] for r in results[how])

    print(f"{args.items} items of ~1 KB, {args.backend}, median of {args.repeats} runs")
    print(f"{'':6} {'first use':>10} {'use all':>9} {'memory after first use':>23}")
    for how in ("eager", "lazy"):
        print(
            f"{how:6} {1000 * med(how, 'first_use'):8.1f}ms {1000 * med(how, 'all_use'):7.0f}ms "
            f"{med(how, 'held') / 2**20:20.2f} MiB"
        )
    print(
        f"lazy is {med('eager', 'first_use') / med('lazy', 'first_use'):.1f}x faster to first "
        f"use and holds {med('eager', 'held') / max(1.0, med('lazy', 'held')):.1f}x less memory"
    )


if __name__ == "__main__":
    main()
