"""The benchmarks behind issue #15's figures still run (small sizes, no timing asserted):
``bench_monitor_overhead.py``'s periodic-cost part crashed for a whole session after the
monitor split, unseen because nothing ran it."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.bench_module import BENCHMARKS, load_benchmark


def _run(script: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMLENS_")}
    run = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_monitor_overhead_periodic_costs_are_fractions_of_a_core() -> None:
    bench = load_benchmark("bench_monitor_overhead")
    costs = bench.periodic_costs("production")
    assert set(costs) >= {"sample", "leak_check", "history_flush", "history_bytes"}
    assert all(0 < costs[k] < 0.05 for k in ("sample", "leak_check", "history_flush"))
    assert costs["history_bytes"] > 100_000  # a 30-day history


def test_monitor_overhead_rounds_report_the_sampler_beside_the_monitor() -> None:
    from memlens.heap.native_ext import load_extension

    bench = load_benchmark("bench_monitor_overhead")
    for config in (None, bench.SAMPLER, "production", "standard"):
        got = bench.timed_round(config, 300, warmup=0.01)
        assert got.wall > 0 and got.cpu > 0, config
        sampled = config in (bench.SAMPLER, "standard") and load_extension("_sampler")
        # the interval and samples per request are read from the sampler that ran
        assert (
            (got.interval >= 4096 and got.per_request > 0)
            if sampled
            else got.interval != got.interval
        )
    assert got.monitor_cpu >= 0


def test_profiler_stop_names_the_blocks_lines() -> None:
    out = _run("bench_profiler_stop.py", "--objects", "3000")
    (row,) = out.splitlines()[1:]
    assert row.split()[0] == "3,000" and "the block's 3 lines" in row, out


def test_monitor_stall_reports_every_mode_asked() -> None:
    out = _run(
        "bench_monitor_stall.py", "--blocks", "3000", "--seconds", "1.5", "--modes", "standard"
    )
    (row,) = out.splitlines()[2:]
    mode, interval, samples = row.split()[:3]
    assert mode == "standard" and interval == "1.00s" and int(samples) >= 1, out
