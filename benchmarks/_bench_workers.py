"""What the fleet benchmarks' worker processes share: the sync loop and the start-up."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar


class _Result(Protocol):
    success: bool


R = TypeVar("R", bound=_Result)


def sync_until_success(sync: Callable[[], R]) -> tuple[list[R], int]:
    """Sync until one succeeds (10 ms apart); every result, and how many failed."""
    results: list[R] = []
    while True:
        result = sync()
        results.append(result)
        if result.success:
            return results, len(results) - 1
        time.sleep(0.01)


def run_workers(script: str, workers: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Start ``script --worker ARGS…`` once per argument list, all at once, and return
    the JSON each printed last (in order); a worker that fails stops the benchmark."""
    procs = [
        subprocess.Popen(
            [sys.executable, script, "--worker", *args], stdout=subprocess.PIPE, text=True
        )
        for args in workers
    ]
    tallies = []
    for proc in procs:
        out, _ = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"worker failed with exit code {proc.returncode}")
        tallies.append(json.loads(out.strip().splitlines()[-1]))
    return tallies
