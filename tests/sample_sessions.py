"""Hand-built sessions for store, report and CLI tests (no profiler needed)."""

from __future__ import annotations

import math

from memlens.core.session import (
    COMPLETED,
    AllocationSite,
    ComponentUsage,
    GcGenerationStats,
    Session,
)


def make_session(
    name: str = "demo",
    *,
    samples: int = 40,
    start_rss: int = 50 * 2**20,
    growth_per_sample: int = 256 * 2**10,
    status: str = COMPLETED,
    kind: str = "run",
    session_id: str | None = None,
) -> Session:
    """A session whose RSS grows linearly with a little ripple, like a slow leak."""
    session = Session(name=name, kind=kind, status=status, interval=0.1)
    if session_id is not None:
        session.id = session_id
    rss_values = []
    for i in range(samples):
        t = i * 0.1
        rss = start_rss + i * growth_per_sample + int(64 * 2**10 * math.sin(i))
        traced = 2**20 + i * growth_per_sample // 2
        rss_values.append(rss)
        session.series.append(
            t,
            {
                "rss": rss,
                "vms": rss * 3,
                "traced": traced,
                "traced_peak": traced + 4096,
                "gc_collections": i // 5,
            },
        )
    session.start_rss = rss_values[0]
    session.final_rss = rss_values[-1]
    session.peak_rss = max(rss_values)
    session.peak_traced = 2**20 + samples * growth_per_sample // 2
    session.final_traced = session.peak_traced - 4096
    session.duration = samples * 0.1
    session.trace_depth = 16
    session.exit_code = 0
    session.top_sites = [
        AllocationSite(
            filename=f"/app/service/module{k}.py",
            lineno=10 + k,
            function=f"handler_{k}",
            size=(12 - k) * 100_000,
            count=(12 - k) * 10,
            size_diff=(12 - k) * 90_000,
            count_diff=(12 - k) * 9,
            component="engine" if k % 2 == 0 else None,
            stack=[
                f"/app/service/module{k}.py:{10 + k} in handler_{k}",
                "/app/main.py:3 in <module>",
            ],
        )
        for k in range(12)
    ]
    session.gc = [
        GcGenerationStats(
            generation=g,
            collections=30 // (g + 1),
            collected=100 * (3 - g),
            pause_total=0.002 * (g + 1),
            pause_max=0.001 * (g + 1),
        )
        for g in range(3)
    ]
    session.components = [
        ComponentUsage(name="engine", current=3 * 2**20, peak=4 * 2**20, growth=2**20, count=1200),
        ComponentUsage(name="cache", current=2**20, peak=2**20, growth=0, count=300),
    ]
    session.metadata.argv = ["service.py", "--requests", "10"]
    return session
