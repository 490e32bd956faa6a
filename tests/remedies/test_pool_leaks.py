"""Pool leaks: the pools count borrows in core, and the doctor names the pool that leaked.

The cases in ``cases/`` state their truth in their docstrings (written before the
doctor ran on them); a held and a dropped leak, and a look-alike that returns.
"""

from __future__ import annotations

import gc
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

import memlens
from memlens.core import pool_leaks
from memlens.remedies.pools import MemoryPool
from tests.memlens_cli import memlens as run_cli
from tests.remedies.helpers import in_forked_child

CASES = Path(__file__).parent / "cases"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"pool_case_{name}", CASES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def line_of(name: str, text: str) -> int:
    lines = (CASES / f"{name}.py").read_text().splitlines()
    return next(i + 1 for i, line in enumerate(lines) if text in line)


class Thing:
    pass


def test_the_core_registry_counts_borrows_returns_and_losses() -> None:
    before = pool_leaks.snapshot()
    pool = MemoryPool(name="core.counts")
    pool.register_factory("thing", Thing)
    kept = pool.get("thing")  # outstanding
    returned = pool.get("thing")
    pool.put("thing", returned)
    del returned
    pool.get("thing")  # the idle one again, dropped at once: lost
    gc.collect()
    pool.get_stats()  # a loss seen while the pool was busy is recorded by the next reader
    changes = {k: v for k, v in pool_leaks.since(before).items() if k[0] == "core.counts"}
    assert sum(d.borrowed for d in changes.values()) == 3
    assert sum(d.returned for d in changes.values()) == 1
    assert sum(d.lost for d in changes.values()) == 1
    assert sum(d.outstanding for d in changes.values()) == 1
    assert all(k[2].endswith(".py:" + k[2].rsplit(":", 1)[1]) for k in changes)
    assert {d.type_name for d in changes.values()} == {f"{__name__}.Thing"}
    assert kept is not None
    # A fork while another thread recorded would leave the lock held: the child gets a new one.
    assert in_forked_child(lambda: pool_leaks.record_borrow("p", "k", "f:1") is None)


def test_the_doctor_names_a_pool_whose_objects_are_held(tmp_path: Path) -> None:
    case = CASES / "pool_held.py"
    out = run_cli(
        "doctor", str(case), "--budget", "3", "-f", "json", "--no-save", db=tmp_path / "m.db"
    )
    assert out.returncode == 1, out.stderr
    diag = json.loads(out.stdout)
    named = [f for f in diag["findings"] if f.get("details", {}).get("pool") == "db"]
    assert named, diag["findings"]
    for f in named:
        assert f["details"]["kind"] == "conn"
        line = line_of("pool_held", "pool.get(")
        assert f["details"]["borrowed_at"].endswith(f"pool_held.py:{line}")
        assert f["details"]["outstanding"] >= f["details"]["borrowed"] * 0.9
        assert "pool 'db'" in f["why"] + f["summary"]
        assert "return what you borrow" in f["remedies"][0]["title"]
    text = run_cli("doctor", str(case), "--budget", "3", "--no-save", db=tmp_path / "m.db")
    assert "pool 'db'" in text.stdout and "never returned" in text.stdout


def test_the_doctor_names_a_pool_whose_objects_are_dropped() -> None:
    case = load("pool_dropped")
    diag = memlens.doctor(case.step, budget=3)
    assert diag.verdict == "leak", diag.reason
    (finding,) = [f for f in diag.findings if f.category == "pool_leak"]
    assert finding.details["pool"] == "sessions" and finding.details["kind"] == "session"
    line = line_of("pool_dropped", "pool.get(")
    assert finding.details["borrowed_at"].endswith(f"pool_dropped.py:{line}")
    assert finding.details["lost"] >= 0.9 * finding.details["borrowed"]
    assert "dropped without being returned" in finding.summary and "put()" in finding.why
    assert "pool 'sessions'" in diag.reason
    assert (
        memlens.heap.doctor.Diagnosis.from_dict(diag.to_dict()).findings[-1].details["pool"]
        == "sessions"
    )


@pytest.mark.parametrize("name", ["pool_returned", "pool_kept_once"])
def test_a_pool_used_correctly_is_not_named(name: str) -> None:
    case = load(name)
    diag = memlens.doctor(case.step, budget=3)
    assert not [f for f in diag.findings if f.category == "pool_leak"]
    assert not [f for f in diag.findings if "pool" in f.details]
    assert "pool leak" not in diag.reason


def test_a_watched_block_names_the_pool_too() -> None:
    case = load("pool_dropped")
    from memlens.heap.doctor import watch

    watched = watch(budget=2, max_iterations=300)
    while not watched.done:
        with watched:
            case.step(watched.iterations)
    diag = watched.diagnosis
    named = [f for f in diag.findings if f.category == "pool_leak"]
    assert [f.details["pool"] for f in named] == ["sessions"] and diag.verdict == "leak"
