"""Syncs per second of one shared context memory as its window grows.

One worker opens a ``SharedContextMemory`` on a fresh session, fills it to ``--items``
messages (syncing as it goes), then times ``--rounds`` turns of "add one message,
sync" and as many syncs with nothing changed. Each code base runs in its own
subprocess on the same store server, the trees taking turns ``--repeat`` times (the
median is shown), so the ratio holds under the machine's load:

    python benchmarks/shared_sync_speed.py                          # this tree only
    python benchmarks/shared_sync_speed.py --baseline /path/to/old/src  # side by side

``--baseline`` is the ``src`` folder of another checkout (e.g. ``main`` before a
change); both trees run the same worker code below.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Loaded by path from the tests too, so the sibling helper is found by its folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_redis import redis_url  # noqa: E402

HERE = Path(__file__).resolve()
SRC = HERE.parents[1] / "src"


def worker(url: str, session: str, items: int, rounds: int) -> dict[str, float]:
    """Fill a window to ``items``, then time changed and unchanged syncs."""
    from memlens.context.shared import DistributedMemoryManager, SharedContextMemory

    manager = DistributedMemoryManager(url, writer_id="speed", snapshot_every=500)
    memory = SharedContextMemory(manager, session, budget=10_000_000)
    for i in range(items):
        memory.add_message("user" if i % 2 == 0 else "assistant", _text(i))
        if i % 20 == 19:
            memory.sync()
    memory.sync()
    started = time.perf_counter()
    for i in range(rounds):
        memory.add_message("user", _text(items + i))
        if not memory.sync().success:
            raise SystemExit("a sync failed")
    changed = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(rounds):
        if not memory.sync().success:
            raise SystemExit("a sync failed")
    idle = time.perf_counter() - started
    manager.close()
    return {"changed": rounds / changed, "idle": rounds / idle, "items": len(memory.entries)}


def _text(i: int) -> str:
    return f"message {i}: the ledger refund for order {i * 7} needs a second look " * 3


def measure(src: Path, url: str, session: str, items: int, rounds: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, str(HERE), "--worker", url, session, str(items), str(rounds)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"the worker on {src} failed:\n{out.stderr.strip()}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, session, items, rounds = sys.argv[2:6]
        print(json.dumps(worker(url, session, int(items), int(rounds))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[50, 200, 800])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="turns per tree (median)")
    parser.add_argument("--backend", choices=["sqlite", "redis", "both"], default="both")
    parser.add_argument("--baseline", type=Path, help="src folder of the code to compare with")
    args = parser.parse_args()
    trees = [("this tree", SRC)]
    if args.baseline:
        trees.insert(0, ("baseline", args.baseline.resolve()))
    print(
        f"one worker, add one message + sync, then sync with nothing changed; "
        f"{args.rounds} rounds each; syncs per second"
    )
    print(f"{'backend':8} {'items':>6} {'code':10} {'changed/s':>10} {'idle/s':>8} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        backends: list[tuple[str, str]] = []
        if args.backend in ("sqlite", "both"):
            backends.append(("sqlite", f"sqlite:///{Path(tmp) / 'speed.db'}"))
        with redis_url(Path(tmp)) if args.backend in ("redis", "both") else _none() as rurl:
            if rurl:
                backends.append(("redis", rurl))
            for backend, url in backends:
                for items in args.items:
                    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
                    for turn in range(args.repeat):
                        for name, src in trees:
                            session = f"speed-{name.replace(' ', '-')}-{items}-{turn}"
                            runs[name].append(measure(src, url, session, items, args.rounds))
                    first: dict[str, float] | None = None
                    for name, _src in trees:
                        got = {
                            k: statistics.median(r[k] for r in runs[name])
                            for k in ("changed", "idle")
                        }
                        ratio = f"{got['changed'] / first['changed']:.1f}x" if first else ""
                        first = first or got
                        print(
                            f"{backend:8} {items:6d} {name:10} {got['changed']:10.1f} "
                            f"{got['idle']:8.1f} {ratio:>7}"
                        )
                        sys.stdout.flush()


class _none:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    main()
