"""Overhead of ``memlens lines`` beside memory_profiler's line profiler, same function.

    python benchmarks/deepdive/bench_lines.py [--repeat 3]

The workload is a mix of line kinds (a loop building a list, string formatting,
dict updates, a temporary buffer). Each tool runs it line by line; the bare run is
the baseline. Prints seconds and the slowdown factor of each.
"""

from __future__ import annotations

import argparse
import statistics
import time


def workload() -> int:
    out = []
    index = {}
    total = 0
    for i in range(20_000):
        text = f"item-{i}"
        out.append(text)
        index[text] = i
        if i % 100 == 0:
            buf = bytearray(10_000)
            total += len(buf)
    return total + len(out) + len(index)


def bare() -> float:
    t0 = time.perf_counter()
    workload()
    return time.perf_counter() - t0


def memlens_lines() -> float:
    from memlens.heap.lines import LineTracer

    tracer = LineTracer(is_user=lambda f: f == __file__)
    t0 = time.perf_counter()
    tracer.run("workload", workload)
    return time.perf_counter() - t0


def memory_profiler_lines() -> float:
    import io

    from memory_profiler import LineProfiler, show_results

    prof = LineProfiler(backend="psutil")
    t0 = time.perf_counter()
    prof(workload)()
    took = time.perf_counter() - t0
    show_results(prof, stream=io.StringIO())
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = {
        name: statistics.median(fn() for _ in range(args.repeat))
        for name, fn in (
            ("bare", bare),
            ("memlens lines", memlens_lines),
            ("memory_profiler", memory_profiler_lines),
        )
    }
    base = runs["bare"]
    for name, took in runs.items():
        print(f"{name:>16}: {took:8.3f} s  ({took / base:6.1f}x bare)")
    ratio = runs["memlens lines"] / runs["memory_profiler"]
    print(f"memlens lines / memory_profiler: {ratio:.2f}")


if __name__ == "__main__":
    main()
