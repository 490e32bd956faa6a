"""Overhead of the always-on monitor on a request-handling workload.

Runs the same fixed number of simulated requests with no monitor, with the sampling
tracer alone (``sampler``: the one the ``standard`` monitor starts, automatic
interval, the mode's stack depth, and no monitor), with the monitor in
``production`` mode and in ``standard`` mode, side by side: each repeat runs all of
them once, in a rotating order, and the figures are medians over repeats. Each round
starts its configuration, runs ``--warmup`` CPU seconds of requests that are not
measured, then the measured requests. The warm-up is where the sampler's cost
governor spends its start-up allowance (the monitor's 1 % budget of the up to 10 CPU
seconds before the start, 100 ms of recording, is let through at the smallest
interval, for a few CPU seconds on this workload), so the figures are the steady
state of a long-running service; ``--warmup 0`` measures a freshly started monitor instead.
Prints the wall-time and request-thread CPU ratios of each to the unmonitored run
(medians of the per-repeat paired ratios), the monitor thread's own CPU, the
sampler's interval and samples per request at the end of the round, and the
``standard`` monitor's CPU over the sampler alone (the monitor's own part on the
program's thread). Then the amortized steady-state cost of the periodic work that a
short round may not include (smaps reads, leak checks, history flush), in CPU time.

    python benchmarks/bench_monitor_overhead.py                # ~6 minutes
    python benchmarks/bench_monitor_overhead.py --rounds 11 --round-seconds 10
    python benchmarks/bench_monitor_overhead.py --budgets 0.01,0.005   # + standard@1 %, @0.5 %
    python benchmarks/bench_monitor_overhead.py --rounds 21 --skip sampler,production --budgets 0.02
    python benchmarks/bench_monitor_overhead.py --skip production,standard --sampler-budgets 0.02
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memlens.core.clock import ManualClock
from memlens.core.config import Config
from memlens.core.errors import ConfigError
from memlens.heap.sampler import AUTO_BUDGET, AllocationSampler
from memlens.service import Monitor
from memlens.service.components import MONITOR_SAMPLER_BUDGET
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


SAMPLER = "sampler"  # the standard monitor's sampling tracer alone, no monitor
NONE = "none"


class Round:
    """One measured round: wall and request-thread CPU seconds, the monitor thread's
    CPU seconds, the sampler's interval at the end and its samples per request."""

    def __init__(
        self, wall: float, cpu: float, monitor_cpu: float = 0.0, sampler: Any = None
    ) -> None:
        self.wall, self.cpu, self.monitor_cpu = wall, cpu, monitor_cpu
        self.interval = self.per_request = math.nan
        if sampler is not None and sampler.backend == "sampling":
            self.interval = float(sampler.stats()["interval"])


def _samples(sampler: Any) -> float:
    if sampler is None or sampler.backend != "sampling":
        return math.nan
    return float(sampler.stats()["samples"])


def warm_up(cpu_seconds: float) -> None:
    """Run requests for ``cpu_seconds`` of this thread's CPU time (not wall time: on a
    loaded machine a wall second is a fraction of a CPU second)."""
    end = time.thread_time() + cpu_seconds
    while time.thread_time() < end:
        run_requests(200)


def _measure(n: int, warmup: float, sampler: Any, monitor: Monitor | None = None) -> Round:
    """Warm up, then measure ``n`` requests (with ``sampler`` and ``monitor`` running)."""
    warm_up(warmup)
    samples, monitor_cpu = _samples(sampler), monitor.sample_cpu if monitor else 0.0
    wall, cpu = run_requests(n)
    monitor_cpu = (monitor.sample_cpu - monitor_cpu) if monitor else 0.0
    out = Round(wall, cpu, monitor_cpu, sampler)
    out.per_request = (_samples(sampler) - samples) / n
    return out


def monitor_config(config: str) -> Config:
    """A monitor mode, or ``MODE@BUDGET``: the mode with ``sampler_budget=BUDGET``."""
    mode, _, budget = config.partition("@")
    extra = {"sampler_budget": float(budget)} if budget else {}
    return Config(mode=mode, persist_history=False, **extra)


def timed_round(config: str | None, n: int, warmup: float = 0.0) -> Round:
    """``n`` requests under ``config`` (None, ``sampler`` or a monitor mode), after
    ``warmup`` CPU seconds of requests that are not measured."""
    if config is None:
        return _measure(n, warmup, None)
    name, _, budget = config.partition("@")
    if name == SAMPLER:
        sampler = AllocationSampler(
            depth=Config(mode="standard").effective_trace_depth,
            budget=float(budget) if budget else MONITOR_SAMPLER_BUDGET,
        )
        sampler.start()
        try:
            return _measure(n, warmup, sampler)
        finally:
            sampler.stop()
    monitor = Monitor(monitor_config(config)).start()
    try:
        return _measure(n, warmup, monitor.heapwatch.sampler, monitor)
    finally:
        monitor.stop()


# -- amortized periodic costs --------------------------------------------------------------
def cost_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Least thread CPU seconds of ``repeat`` calls (CPU time: on a loaded machine the
    wall time also counts the waits for a CPU)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.thread_time()
        fn()
        best = min(best, time.thread_time() - start)
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


def child(config: str, n: int) -> None:
    """``n`` requests under ``config``, for an instruction count of the loop alone:
    ``valgrind --tool=callgrind --toggle-collect=map_next python3.11
    benchmarks/bench_monitor_overhead.py --child CONFIG --requests N`` counts only what
    runs inside the ``map`` (the requests, the allocator hooks, GC callbacks). The
    monitor runs without its thread (its thread's work is the ``monitor CPU`` column
    and the periodic costs); no warm-up (valgrind's slowed CPU clock keeps the
    sampler's governor in its start-up allowance: the automatic interval's worst case).
    """
    configs = [NONE, SAMPLER, "production", "standard"]
    if config not in configs:
        raise SystemExit(f"--child takes one of {', '.join(configs)}, not {config!r}")
    run_requests(500)
    stop: Callable[[], object] = lambda: None  # noqa: E731
    if config == SAMPLER:
        sampler = AllocationSampler(
            depth=Config(mode="standard").effective_trace_depth, budget=MONITOR_SAMPLER_BUDGET
        )
        stop = sampler.start().stop
    elif config != NONE:
        stop = Monitor(Config(mode=config, persist_history=False)).start(thread=False).stop
    list(map(handle_request, range(n)))
    stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--child", metavar="CONFIG", help="only run --requests requests under CONFIG"
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests for --child")
    parser.add_argument("--rounds", type=int, default=7, help="repeats of each configuration")
    parser.add_argument(
        "--round-seconds", type=float, default=6.0, help="approximate length of one round"
    )
    parser.add_argument(
        "--budgets",
        default="",
        help="comma-separated sampler budgets (fractions of CPU): a standard@BUDGET row each",
    )
    parser.add_argument(
        "--sampler-budgets",
        default="",
        help="comma-separated budgets: a sampler@BUDGET row each, the tracer alone "
        f"(memlens run --sample costs at most {AUTO_BUDGET:g})",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated configurations to leave out (sampler, production, standard), "
        "to spend the rounds on the rest",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=5.0,
        help="CPU seconds of requests run under each configuration before it is measured",
    )
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.requests)
        return
    if args.rounds < 1 or args.round_seconds <= 0 or args.warmup < 0:
        parser.error("--rounds must be >= 1, --round-seconds > 0 and --warmup >= 0")

    run_requests(2000)  # warm caches and the allocator
    per_request = run_requests(5000)[0] / 5000
    n = max(1000, int(args.round_seconds / per_request))
    print(
        f"workload: {n} requests per round (~{per_request * 1e6:.1f} µs each) after "
        f"{args.warmup:g} CPU s unmeasured, {args.rounds} rounds; load average "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
    )

    try:
        budgets = [float(b) for b in args.budgets.split(",") if b.strip()]
        sampler_budgets = [float(b) for b in args.sampler_budgets.split(",") if b.strip()]
        for b in budgets + sampler_budgets:
            Config(sampler_budget=b)
    except (ValueError, ConfigError) as exc:
        parser.error(f"--budgets, --sampler-budgets: {exc}")
    optional = (SAMPLER, "production", "standard")
    skipped = {name.strip() for name in args.skip.split(",") if name.strip()}
    if not skipped <= set(optional):
        parser.error(f"--skip: any of {', '.join(optional)}, not {args.skip!r}")
    configs: list[str | None] = [None, *(c for c in optional if c not in skipped)]
    configs += [f"standard@{b:g}" for b in budgets]
    configs += [f"{SAMPLER}@{b:g}" for b in sampler_budgets]
    rounds: dict[str | None, list[Round]] = {c: [] for c in configs}
    for r in range(args.rounds):
        k = r % len(configs)
        for config in configs[k:] + configs[:k]:  # rotate so none always runs first
            rounds[config].append(timed_round(config, n, args.warmup))
    base = rounds[None]

    def ratios(config: str | None, of: str | None = None, cpu: bool = False) -> list[float]:
        pairs = zip(rounds[config], rounds[of])
        return [(a.cpu / b.cpu) if cpu else (a.wall / b.wall) for a, b in pairs]

    def ratio(config: str | None, of: str | None = None, cpu: bool = False) -> float:
        return statistics.median(ratios(config, of, cpu))

    def quartiles(config: str | None) -> str:
        """The middle half of the per-repeat CPU ratios: how far one median can be trusted."""
        got = ratios(config, cpu=True)
        if len(got) < 4:
            return "-"
        q1, _, q3 = statistics.quantiles(got, n=4)
        return f"{q1:.3f}-{q3:.3f}"

    print(
        f"{'':<16}{'median wall':>13}{'wall ratio':>12}{'cpu ratio':>11}{'monitor CPU':>13}"
        f"{'cpu quartiles':>15}{'interval':>10}{'samples/req':>13}"
    )
    for config in configs:
        rs = rounds[config]
        monitor_cpu = statistics.median([x.monitor_cpu / x.wall for x in rs])
        interval = statistics.median([x.interval for x in rs])
        per = statistics.median([x.per_request for x in rs])
        print(
            f"{config or 'none':<16}{statistics.median([x.wall for x in rs]):>12.3f}s"
            f"{ratio(config):>12.4f}{ratio(config, cpu=True):>11.4f}"
            + (f"{monitor_cpu * 100:>12.3f}%" if config not in (None, SAMPLER) else f"{'-':>13}")
            + f"{quartiles(config) if config else '-':>15}"
            + (f"{interval / 1024:>8.0f}Ki" if interval == interval else f"{'-':>10}")
            + (f"{per:>13.2f}" if per == per else f"{'-':>13}")
        )
    if SAMPLER in rounds and "standard" in rounds:
        print(
            f"standard over the sampler alone (the monitor's own part), cpu ratio "
            f"{ratio('standard', SAMPLER, cpu=True):.4f}"
        )
    walls = [x.wall for x in base]
    print(f"(wall spread of the unmonitored rounds: {(max(walls) / min(walls) - 1) * 100:.1f} %)")
    print("\namortized periodic work (CPU, fraction of one core, steady state, 30-day history):")
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
