"""Synthetic workloads for monitor tests: a ManualClock and readers computed from it."""

from __future__ import annotations

import random
from collections.abc import Callable

from memlens.core.clock import ManualClock
from memlens.core.config import Config
from memlens.service import Monitor

MB = 1024 * 1024


class Workload:
    """RSS as a function of time, plus measurement noise and request spikes."""

    def __init__(self, shape: Callable[[float], float], seed: int = 7, spikes: bool = True) -> None:
        self.clock = ManualClock()
        self.shape = shape
        self.rng = random.Random(seed)
        self.spikes = spikes

    def read(self) -> dict[str, float]:
        t = self.clock.monotonic()
        value = self.shape(t) + self.rng.gauss(0, 150_000)
        if self.spikes and self.rng.random() < 0.25:
            value += self.rng.uniform(0, 30 * MB)  # a request's temporary buffers
        return {"rss": value, "vms": value * 4}


def make_monitor(workload: Workload, **overrides: object) -> Monitor:
    overrides.setdefault("persist_history", False)
    config = Config(**overrides)  # type: ignore[arg-type]
    return Monitor(config, clock=workload.clock, readers=[workload.read])


def run_for(monitor: Monitor, workload: Workload, seconds: float) -> list[float]:
    """Sample every interval for ``seconds``; returns the series times of new alerts."""
    alerts_at = []
    known: set[str] = set()
    steps = int(seconds / monitor.interval)
    for _ in range(steps):
        workload.clock.advance(monitor.interval)
        monitor.sample_now()
        for alert in monitor.leaks.active():
            if alert.id not in known:
                known.add(alert.id)
                alerts_at.append(workload.clock.monotonic())
    return alerts_at
