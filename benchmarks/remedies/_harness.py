"""What the remedies benchmarks share: a fresh interpreter per case, and an event loop
that serves small requests while the measured work runs on another thread."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

Ticks = list[tuple[float, float]]  # (scheduled wake-up, lateness) per loop tick


def in_fresh_interpreter(script: str, *args: str) -> dict[str, Any]:
    """``python script ARGS`` in a new process; the JSON object on its last output line."""
    out = subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def _serve(until: threading.Event, ticks: Ticks, period: float) -> None:
    """Handle a ~2 KB JSON "request" every ``period``; record each tick's lateness."""
    while not until.is_set():
        scheduled = time.perf_counter() + period
        await asyncio.sleep(period)
        ticks.append((scheduled, time.perf_counter() - scheduled))
        json.dumps({"items": [{"sku": j, "name": f"item-{j}" * 3} for j in range(40)]})


def beside_a_loop(
    work: Callable[[], None], *, warmup: float = 0.5, period: float = 0.001
) -> tuple[Ticks, tuple[float, float]]:
    """Run an asyncio loop on this thread: warm up, one quiet second (the noise floor),
    then ``work()`` on another thread until it ends. Returns the ticks and the quiet
    window (perf_counter from, to)."""

    async def main() -> tuple[Ticks, tuple[float, float]]:
        ticks: Ticks = []
        stop = threading.Event()
        task = asyncio.create_task(_serve(stop, ticks, period))
        await asyncio.sleep(warmup)
        quiet_from = time.perf_counter()
        await asyncio.sleep(1.0)
        quiet = (quiet_from, time.perf_counter())
        worker = threading.Thread(target=work)
        worker.start()
        while worker.is_alive():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        stop.set()
        await task
        return ticks, quiet

    return asyncio.run(main())
