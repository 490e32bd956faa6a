"""Each leak category and each look-alike kind, on corpus scenarios (real runs)."""

from __future__ import annotations

import os

import pytest

from tests.doctor.conftest import CORPUS, run_scenario

LEAKS = [
    ("leak_sessions.py", "growing_collection"),
    ("leak_memo_dict.py", "unbounded_memo"),
    ("leak_event_bus.py", "listener"),
    ("leak_lru_method.py", "cached_instances"),
    ("leak_stored_exceptions.py", "stored_traceback"),
    ("leak_closure_pending.py", "closure_registry"),
    ("leak_thread_local.py", "thread_local"),
    ("leak_gc_disabled_tree.py", "gc_disabled_cycles"),
    ("leak_native_ctypes.py", "native"),
    ("leak_linked_history.py", "other"),
]

LOOKALIKES = [
    "ok_bounded_lru.py",  # cache filling to its bound
    "ok_lazy_table.py",  # lazily built table
    "ok_ring_buffer.py",  # ring buffer at its cap
    "ok_gc_cycles_freed.py",  # cycles the collector frees
    "ok_periodic_clear.py",  # buffer cleared every N steps
    "ok_weak_cache.py",  # weak cache
    "ok_interning.py",  # interning of a fixed vocabulary
    "ok_late_lazy_init.py",  # one-time lazy initialisation late in the run
    "ok_big_bounded_cache.py",  # a bound far beyond the run: stated in code
    "ok_gc_disabled_acyclic.py",  # GC disabled, but nothing cyclic to pile up
]


def _expected(name: str) -> dict:
    import ast

    with open(os.path.join(CORPUS, name), encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "EXPECTED":
            return ast.literal_eval(node.value)
    raise AssertionError(name)


def _site(spec: str) -> tuple[str, int]:
    rel, _, tag = spec.partition("#")
    path = os.path.join(CORPUS, rel)
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.rstrip().endswith(f"# leak-site: {tag}"):
                return os.path.realpath(path), lineno
    raise AssertionError(spec)


@pytest.mark.parametrize(("name", "category"), LEAKS)
def test_category(name: str, category: str) -> None:
    got = run_scenario(name)
    exp = _expected(name)
    assert exp["category"] == category
    assert got["verdict"] == "leak"
    assert got["category"] == category
    file, _, line = got["site"].rpartition(":")
    assert (os.path.realpath(os.path.join(CORPUS, file)), int(line)) == _site(exp["site"])
    assert exp["root"] in got["root"]


@pytest.mark.parametrize("name", LOOKALIKES)
def test_lookalike_is_not_a_leak(name: str) -> None:
    got = run_scenario(name)
    assert got["verdict"] != "leak", got


def test_third_party_root_names_the_library() -> None:
    got = run_scenario("leak_cachetools_memo.py")
    assert got["verdict"] == "leak"
    assert got["library"] == "cachetools"
