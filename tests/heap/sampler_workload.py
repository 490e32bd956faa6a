"""A program with known allocation sites, for the sampler's accuracy tests.

Run as ``python sampler_workload.py BACKEND INTERVAL SEED [PACE [BUDGET]]``; prints a JSON object
``{"lineno": live_bytes}`` for this file's sites (BACKEND: sampling | tracemalloc;
INTERVAL 0: chosen automatically), and the interval in use at the end. PACE > 0 does
PACE x 100 loop turns of CPU work (no allocation) per allocation, so that allocating is
a small part of the program's time, as in most services (0: allocation only). BUDGET:
the automatic interval's cost budget (default: the sampler's, ``AUTO_BUDGET``).
Sizes were chosen before running memlens on it: four sites of very different block
sizes (~16 MB of 1 KB bytes, ~14 MB of short str, ~8 MB of 64 KB bytearrays, ~3 MB of
small dicts), a churning site that keeps nothing, and one freed site.
"""

import json
import sys

from memlens.heap.sampler import AUTO_BUDGET, AllocationSampler

PACE = int(sys.argv[4]) if len(sys.argv) > 4 else 0
BUDGET = float(sys.argv[5]) if len(sys.argv) > 5 else AUTO_BUDGET


def pace():
    j = 0
    while j < PACE:  # small ints only: no allocation
        k = 0
        while k < 100:
            k += 1
        j += 1
    return True


def big_blocks(n):
    return [bytes(1000) + bytes([i % 256]) for i in range(n) if pace()]  # ~1 KB each


def short_strings(n):
    return [f"item-{i:08d}" for i in range(n) if pace()]  # ~62 B each


def buffers(n):
    return [bytearray(65536) for _ in range(n) if pace()]


def small_dicts(n):
    return [{"k": i} for i in range(n) if pace()]


def churn(n):
    total = 0
    for i in range(n):
        total += len([i] * 20) if pace() else 0
    return total


def freed(n):
    return [bytes(500) for _ in range(n) if pace()]


def main():
    backend, interval, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sampler = AllocationSampler(
        interval=interval, depth=8, seed=seed, exact=backend != "sampling", budget=BUDGET
    )
    sampler.start()
    kept = [big_blocks(16000), short_strings(220000), buffers(128), small_dicts(14000)]
    churn(200000)
    gone = freed(20000)
    del gone
    sites = sampler.site_sums()
    allocated = {}
    for frames, size, _ in sampler.allocated_groups():
        for filename, lineno in frames:
            if filename == __file__:
                allocated[lineno] = allocated.get(lineno, 0) + size
                break
    stats = sampler.stats()
    sampler.stop()
    out = {str(line): size for (f, line), (size, _) in sites.items() if f == __file__}
    print(
        json.dumps(
            {
                "backend": sampler.backend,
                "live": out,
                "allocated": allocated,
                "interval": sampler.interval,
                "limited_by_cost": stats.get("limited_by_cost", False),
            }
        )
    )
    assert len(kept) == 4


if __name__ == "__main__":
    main()
