"""How much does ``memlens run`` cost? Prints a table; not a test.

Runs one allocation-heavy workload side by side, alternating the variants in
every round so that machine noise hits them alike, and reports medians:

- ``memlens run --no-trace`` against a bare ``python workload.py`` (and the same run
  kept in memlens's process, ``MEMLENS_RUN_REEXEC=0``, as it ran before it was hosted);
- ``memlens run`` (tracemalloc at depth N) against ``python -X tracemalloc=N``;
- ``memlens run -m workload`` against ``python -X tracemalloc=N -m workload``
  (and the same run kept in memlens's process, as ``-m`` ran before it was hosted);
- the cost of one process-meter read, in microseconds.

Two ratios are given for each pair: *wall* is the whole command as a user runs
it (start-up, the summary, saving, the HTML report); *program* is the time the
workload measures around its own loop, i.e. the cost while a service runs,
where the fixed costs no longer count. *cpu* is the CPU time of the whole process
(every thread: memlens's sampling thread too) around that loop: on a loaded machine
the wall ratios also measure the neighbours, the CPU ratio measures only the cost.

    python benchmarks/bench_run_overhead.py             # 5 rounds
    python benchmarks/bench_run_overhead.py --rounds 3 --seconds 2 --traced-seconds 0.2
    python benchmarks/bench_run_overhead.py --baseline-src /path/to/other/checkout/src

``--baseline-src`` adds ``memlens (traced, baseline)``: the same traced command with
another memlens source tree first on ``PYTHONPATH``, to compare two versions side by
side in one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

WORKLOAD = textwrap.dedent(
    """
    import json, sys, time
    from collections import deque

    def handle(i, recent, index):
        # A request: decode a payload, build a response, keep a bounded window of
        # recent results and a slowly growing index. Short-lived small objects
        # dominate, as in a typical service.
        payload = json.loads('{"user": %d, "items": [1, 2, 3, 4, 5], "q": "hello"}' % (i % 97))
        words = [f"w{(i * 7 + k) % 1000}" for k in range(12)]
        score = sum(x * x for x in payload["items"]) + sum(len(w) for w in words)
        reply = json.dumps({"id": i, "score": score, "words": words})
        recent.append(reply)
        if i % 100 == 0:
            index[i] = reply[:20]
        return score

    def main(iterations):
        recent, index = deque(maxlen=1000), {}
        start, start_cpu = time.perf_counter(), time.process_time()
        total = 0
        for i in range(iterations):
            total += handle(i, recent, index)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - start_cpu
        print(f"elapsed {elapsed:.6f} cpu {cpu:.6f} total {total}")

    main(int(sys.argv[1]))
    """
)


def memlens_command() -> list[str]:
    """The installed console script when it sits next to this Python, else -m."""
    script = Path(sys.executable).with_name("memlens")
    if script.exists():
        return [str(script)]
    found = shutil.which("memlens")
    return [found] if found else [sys.executable, "-m", "memlens"]


def timed(
    cmd: list[str], cwd: Path, env: dict[str, str], extra: dict[str, str] | None = None
) -> tuple[float, float, float]:
    """Run ``cmd``; return (wall seconds, the workload's elapsed and CPU seconds)."""
    start = time.perf_counter()
    env = {**env, **(extra or {})}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{result.stderr}")
    line = next(x for x in result.stdout.splitlines() if x.startswith("elapsed "))
    return wall, float(line.split()[1]), float(line.split()[3])


def calibrate(script: Path, cwd: Path, seconds: float) -> int:
    """Iterations that make the bare workload run about ``seconds``."""
    iterations = 20_000
    _, took, _ = timed([sys.executable, str(script), str(iterations)], cwd, dict(os.environ))
    return max(1000, int(iterations * seconds / max(took, 1e-3)))


def meter_read_cost(reads: int = 20_000) -> list[tuple[str, float]]:
    """Microseconds per read of the process meter's cheap and detailed paths."""
    from memlens.heap.process_meter import ProcessMeter

    meter = ProcessMeter()
    meter.read()
    out = []
    best = min(_loop(meter.read, reads) for _ in range(5))
    out.append(("process meter read() (statm/status)", best * 1e6))
    detailed = getattr(meter, "read_detailed", None)
    if detailed is not None:
        best = min(_loop(lambda: detailed(force=True), 200) for _ in range(3))
        out.append(("process meter read_detailed(force=True) (smaps_rollup)", best * 1e6))
    return out


def _loop(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (median)")
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="bare workload length, untraced pair"
    )
    parser.add_argument(
        "--traced-seconds",
        type=float,
        default=0.5,
        help="bare workload length for the traced pair (tracemalloc slows it 5-30x)",
    )
    parser.add_argument(
        "--depth", type=int, default=None, help="tracemalloc frames (default: memlens's)"
    )
    parser.add_argument(
        "--baseline-src", metavar="DIR", help="another memlens src/ to run traced, side by side"
    )
    args = parser.parse_args()

    from memlens.heap.heap_meter import DEFAULT_DEPTH

    depth = args.depth or DEFAULT_DEPTH
    with tempfile.TemporaryDirectory(prefix="memlens-bench-") as tmp:
        cwd = Path(tmp)
        script = cwd / "workload.py"
        script.write_text(WORKLOAD)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("MEMLENS_", "PYTHONTRACEMALLOC"))
        }
        env["MEMLENS_DB"] = str(cwd / "bench.db")
        iterations = calibrate(script, cwd, args.seconds)
        traced_iterations = max(1000, int(iterations * args.traced_seconds / args.seconds))
        ml = memlens_command()
        variants = {
            "bare": [sys.executable, str(script)],
            "memlens --no-trace": [*ml, "run", "--no-trace", str(script)],
            # The same kept in memlens's own process, as --no-trace ran before it was hosted
            "memlens --no-trace, in-process": [*ml, "run", "--no-trace", str(script)],
            f"tracemalloc={depth}": [sys.executable, "-X", f"tracemalloc={depth}", str(script)],
            "memlens (traced)": [*ml, "run", "--trace-depth", str(depth), str(script)],
            # The program in memlens's own process (MEMLENS_RUN_REEXEC=0), under the
            # CLI's frames: each one costs tracemalloc time on every allocation.
            "memlens (traced, in-process)": [*ml, "run", "--trace-depth", str(depth)]
            + [str(script)],
        }
        # The same workload as a module (python -m puts the current directory, where
        # it is, first on the path); python -m runs it two runpy frames deep.
        module = [*ml, "run", "--trace-depth", str(depth), "-m", script.stem]
        variants[f"tracemalloc={depth} -m"] = [sys.executable, "-X", f"tracemalloc={depth}"]
        variants[f"tracemalloc={depth} -m"] += ["-m", script.stem]
        variants["memlens (traced) -m"] = module
        variants["memlens (traced, in-process) -m"] = module
        extra_env: dict[str, dict[str, str]] = {
            "memlens (traced, in-process)": {"MEMLENS_RUN_REEXEC": "0"},
            "memlens (traced, in-process) -m": {"MEMLENS_RUN_REEXEC": "0"},
            "memlens --no-trace, in-process": {"MEMLENS_RUN_REEXEC": "0"},
        }
        if args.baseline_src:
            variants["memlens (traced, baseline)"] = variants["memlens (traced)"]
            src = str(Path(args.baseline_src).resolve())
            extra_env["memlens (traced, baseline)"] = {"PYTHONPATH": src}
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
        names = list(variants)
        print(
            f"workload: {iterations} iterations (~{args.seconds:g} s bare) untraced, "
            f"{traced_iterations} (~{args.traced_seconds:g} s bare) traced; rounds: {args.rounds}"
        )
        print(f"memlens: {' '.join(ml)}; python {sys.version.split()[0]}; depth {depth}")
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]  # rotate who goes first
            for name in order:
                untraced = name == "bare" or name.startswith("memlens --no-trace")
                n = iterations if untraced else traced_iterations
                cmd = [*variants[name], str(n)]
                results[name].append(timed(cmd, cwd, env, extra_env.get(name)))
                for leftover in cwd.glob("memlens-report-*.html"):
                    leftover.unlink()
            print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr)

    def median(name: str, k: int) -> float:
        return statistics.median(x[k] for x in results[name])

    print()
    print(f"{'variant':<34}{'wall (s)':>10}{'program (s)':>13}{'cpu (s)':>10}")
    for name in names:
        times = f"{median(name, 0):>10.3f}{median(name, 1):>13.3f}{median(name, 2):>10.3f}"
        print(f"{name:<34}{times}")
    print()
    print(f"{'ratio':<42}{'wall':>8}{'program':>10}{'cpu':>8}{'target':>9}")
    pairs = [
        ("memlens --no-trace / bare", "memlens --no-trace", "bare", "≤ 1.02"),
        ("--no-trace in-process / bare", "memlens --no-trace, in-process", "bare", ""),
        (f"memlens / tracemalloc={depth}", "memlens (traced)", f"tracemalloc={depth}", "≤ 1.10"),
        (
            f"in-process / tracemalloc={depth}",
            "memlens (traced, in-process)",
            f"tracemalloc={depth}",
            "",
        ),
    ]
    pairs += [
        (
            f"memlens -m / tracemalloc={depth} -m",
            "memlens (traced) -m",
            f"tracemalloc={depth} -m",
            "≤ 1.10",
        ),
        (
            f"in-process -m / tracemalloc={depth} -m",
            "memlens (traced, in-process) -m",
            f"tracemalloc={depth} -m",
            "",
        ),
    ]
    if "memlens (traced, baseline)" in results:
        pairs.append(
            (
                f"baseline / tracemalloc={depth}",
                "memlens (traced, baseline)",
                f"tracemalloc={depth}",
                "",
            )
        )
    for label, a, b, target in pairs:
        wall = median(a, 0) / median(b, 0)
        prog = median(a, 1) / median(b, 1)
        cpu = median(a, 2) / median(b, 2)
        print(f"{label:<42}{wall:>8.3f}{prog:>10.3f}{cpu:>8.3f}{target:>9}")
    fixed = (
        median("memlens --no-trace", 0)
        - median("memlens --no-trace", 1)
        - (median("bare", 0) - median("bare", 1))
    )
    print(f"\nfixed cost of memlens run (start-up, summary, save, HTML): {fixed * 1e3:.0f} ms")
    print()
    for label, micros in meter_read_cost():
        print(f"{label:<58}{micros:>9.1f} µs")


if __name__ == "__main__":
    main()
