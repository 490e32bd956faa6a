"""No lost updates: several processes updating one shared session at once, both backends.

Runs the benchmark's workload (``benchmarks/shared_updates.py``) at a smaller size:
every update must end up merged (in the journal) or reported as lost in a conflict.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.bench_module import load_benchmark


def _workload() -> ModuleType:
    return load_benchmark("shared_updates")


@pytest.mark.parametrize("strategy", ["timestamp", "remote-wins"])
def test_no_update_is_lost_silently(record_url: str, strategy: str) -> None:
    workers, updates = 4, 40
    outcome = _workload().run(record_url, "x", workers, updates, 5, strategy)
    assert outcome.silently_lost == 0
    assert outcome.double_counted == 0
    assert outcome.merged + outcome.reported_lost == workers * updates
