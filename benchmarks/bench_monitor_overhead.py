"""Overhead of the always-on monitor on a request-handling workload.

Runs the same fixed number of simulated requests with no monitor, with the monitor
in ``production`` mode and in ``standard`` mode, side by side: each repeat runs
all three once, in a rotating order, and the figures are medians over repeats.
Prints the wall-time ratio of each mode to the unmonitored run (median of the
per-repeat paired ratios), plus the amortized steady-state cost of the periodic
work that a short round may not include (smaps reads, leak checks, history flush).

    python benchmarks/bench_monitor_overhead.py                # ~2 minutes
    python benchmarks/bench_monitor_overhead.py --rounds 11 --round-seconds 10
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from memlens.core.clock import ManualClock
from memlens.core.config import Config
from memlens.service import Monitor
from memlens.service.growth import points
from memlens.service.leaks import assess_growth

# -- the workload: a small JSON API with a bounded cache ----------------------------------
_CACHE: dict[str, dict[str, object]] = {}


def handle_request(i: int) -> int:
    body = json.dumps(
        {
            "user": f"u{i % 500}",
            "items": [{"sku": j, "qty": (i * j) % 7} for j in range(12)],
            "note": "x" * 64,
        }
    )
    request = json.loads(body)
    key = request["user"]
    profile = _CACHE.get(key)
    if profile is None:
        profile = {"name": key.upper(), "seen": 0, "tags": [key[::-1]] * 4}
        if len(_CACHE) > 400:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = profile
    profile["seen"] = int(profile["seen"]) + 1  # type: ignore[call-overload]
    total = sum(item["qty"] * (item["sku"] + 1) for item in request["items"])
    response = json.dumps({"user": profile["name"], "total": total, "lines": len(request["items"])})
    return len(response)


def run_requests(n: int) -> tuple[float, float]:
    """Wall seconds and this thread's CPU seconds for ``n`` requests."""
    start, cpu = time.perf_counter(), time.thread_time()
    for i in range(n):
        handle_request(i)
    return time.perf_counter() - start, time.thread_time() - cpu


def timed_round(mode: str | None, n: int) -> tuple[float, float, float]:
    """(wall, request-thread CPU, monitor sampling CPU) for ``n`` requests under ``mode``."""
    if mode is None:
        return (*run_requests(n), 0.0)
    monitor = Monitor(Config(mode=mode, persist_history=False)).start()
    try:
        wall, cpu = run_requests(n)
    finally:
        monitor.stop()
    return wall, cpu, monitor.sample_cpu


# -- amortized periodic costs --------------------------------------------------------------
def cost_of(fn: Callable[[], object], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def periodic_costs(mode: str) -> dict[str, float]:
    """Seconds per second of wall spent on periodic work, at the mode's cadences."""
    cfg = Config(mode=mode, persist_history=False)
    live = Monitor(cfg)
    out: dict[str, float] = {}
    out["sample"] = cost_of(live.recorder.sample, 50) / cfg.effective_interval
    if "smaps" in cfg.effective_backends:
        out["smaps"] = cost_of(lambda: live.process.read_detailed(force=True)) / cfg.smaps_interval
    # A leak check over a full window, and a flush of a full 30-day history.
    clock = ManualClock()
    rng = random.Random(1)
    fields = (
        "rss",
        "vms",
        "peak_rss",
        "swap",
        "gc_collections",
        "gc_collected",
        "gc_uncollectable",
    )

    def reader() -> dict[str, float]:
        return {f: 1e8 + rng.random() * 1e6 for f in fields}

    with tempfile.TemporaryDirectory() as tmp:
        full = Monitor(
            cfg.replace(db_path=str(Path(tmp) / "bench.db"), leak_check_interval=1e9),
            clock=clock,
            readers=[reader],
        )
        full._started = True  # drive it by hand: no thread, no restore
        step = 20.0
        for _ in range(int(30 * 86400 / step)):
            clock.advance(step)
            full.recorder.sample()
        t = full.now()
        window = cfg.leak_window_seconds
        ts, ys = points(full, "rss", t - window)
        out["leak_check"] = (
            cost_of(
                lambda: assess_growth(
                    ts, ys, min_bucket=3 * cfg.effective_interval, min_rate=1.0, min_span=120.0
                )
            )
            + cost_of(lambda: points(full, "rss", t - window))
        ) / cfg.leak_check_interval
        out["history_flush"] = cost_of(full.flush, 3) / cfg.history_flush_interval
        out["history_bytes"] = float(full.series.nbytes())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7, help="repeats of each configuration")
    parser.add_argument(
        "--round-seconds", type=float, default=6.0, help="approximate length of one round"
    )
    args = parser.parse_args()

    run_requests(2000)  # warm caches and the allocator
    per_request = run_requests(5000)[0] / 5000
    n = max(1000, int(args.round_seconds / per_request))
    print(
        f"workload: {n} requests per round (~{per_request * 1e6:.1f} µs each), {args.rounds} rounds"
    )

    configs: list[str | None] = [None, "production", "standard"]
    walls: dict[str | None, list[float]] = {c: [] for c in configs}
    cpus: dict[str | None, list[float]] = {c: [] for c in configs}
    sampling: dict[str | None, list[float]] = {c: [] for c in configs}
    for r in range(args.rounds):
        order = configs[r % 3 :] + configs[: r % 3]  # rotate so no mode always runs first
        for config in order:
            wall, cpu, sample_cpu = timed_round(config, n)
            walls[config].append(wall)
            cpus[config].append(cpu)
            sampling[config].append(sample_cpu / wall)
    base, base_cpu = walls[None], cpus[None]
    print(
        f"{'mode':<12}{'median wall':>13}{'wall ratio':>12}{'overhead':>10}"
        f"{'cpu ratio':>11}{'sampling CPU':>14}"
    )
    print(
        f"{'none':<12}{statistics.median(base):>12.3f}s{1.0:>12.4f}{'-':>10}{1.0:>11.4f}{'-':>14}"
    )
    for mode in ("production", "standard"):
        ratio = statistics.median([m / b for m, b in zip(walls[mode], base)])
        cpu_ratio = statistics.median([m / b for m, b in zip(cpus[mode], base_cpu)])
        print(
            f"{mode:<12}{statistics.median(walls[mode]):>12.3f}s{ratio:>12.4f}"
            f"{(ratio - 1) * 100:>+9.2f}%{cpu_ratio:>11.4f}"
            f"{statistics.median(sampling[mode]) * 100:>13.3f}%"
        )
    print(f"(wall spread of the unmonitored rounds: {(max(base) / min(base) - 1) * 100:.1f} %)")
    print("\namortized periodic work (fraction of one core, steady state, 30-day history):")
    for mode in ("production", "standard"):
        costs = periodic_costs(mode)
        history = costs.pop("history_bytes")
        parts = ", ".join(f"{k} {v * 100:.4f}%" for k, v in costs.items())
        print(
            f"  {mode:<11} total {sum(costs.values()) * 100:.4f}%  ({parts}); history {history / 1e6:.2f} MB"
        )

    print("\nfootprint (fresh interpreters, side by side with bare python; bench_footprint.py):")
    from bench_footprint import report

    report(rounds=5, names=["bare", "production", "standard"])


if __name__ == "__main__":
    main()
