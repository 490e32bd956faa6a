"""No lost updates: several processes updating one shared session at once, both backends.

Runs the benchmark's workload (``benchmarks/shared_updates.py``) at a smaller size:
every update must end up merged (in the journal) or reported as lost in a conflict.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "shared_updates.py"


def _workload() -> ModuleType:
    spec = importlib.util.spec_from_file_location("shared_updates", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("shared_updates", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("strategy", ["timestamp", "remote-wins"])
def test_no_update_is_lost_silently(record_url: str, strategy: str) -> None:
    workers, updates = 4, 40
    outcome = _workload().run(record_url, "x", workers, updates, 5, strategy)
    assert outcome.silently_lost == 0
    assert outcome.double_counted == 0
    assert outcome.merged + outcome.reported_lost == workers * updates
