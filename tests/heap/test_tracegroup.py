"""A snapshot's traces summed per traceback in C (``memlens._tracegroup``) equal the
pure-Python sort-and-group, on real tracemalloc snapshots: the one a session takes,
and one written to a file and loaded back (whose equal tracebacks are separate tuple
objects, so they must be merged by value)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

import memlens.heap.heap_meter as heap_meter
from memlens.heap.heap_meter import HeapMeter, group_traces
from tests.extensions import require_extension

_module, pytestmark = require_extension("_tracegroup")


def _make_heap() -> list[object]:
    kept: list[object] = []
    for i in range(6_000):
        kept.append([i])
        kept.append({"i": i})
        kept.append(f"item-{i}")
    return kept


def _snapshot() -> tuple[tracemalloc.Snapshot, list[object]]:
    meter = HeapMeter(depth=10)
    meter.start()
    try:
        kept = _make_heap()
        snapshot = meter.snapshot()
    finally:
        meter.stop()
    assert snapshot is not None
    return snapshot, kept


def _python_groups(
    snapshot: tracemalloc.Snapshot, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[heap_meter.Frames, int, int]]:
    with monkeypatch.context() as patch:
        patch.setattr(heap_meter, "load_extension", lambda name: None)
        return group_traces(snapshot)


def test_c_grouping_equals_the_python_grouping(monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot, kept = _snapshot()
    c_groups = group_traces(snapshot)
    assert c_groups == _python_groups(snapshot, monkeypatch)
    # The heap's three lines are there, each with at least its 6,000 objects.
    lines = {g[0][0][1] for g in c_groups if g[0] and g[0][0][0] == __file__ and g[2] >= 6_000}
    assert len(lines) == 3
    assert sum(size for _, size, _ in c_groups) <= sum(t.size for t in snapshot.traces)
    del kept


def test_a_loaded_snapshot_merges_equal_tracebacks_by_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot, kept = _snapshot()
    path = tmp_path / "heap.snapshot"
    snapshot.dump(str(path))
    loaded = tracemalloc.Snapshot.load(str(path))
    raw = loaded.traces._traces  # type: ignore[attr-defined]
    frames = [t[2] for t in raw]
    # Unpickled, equal tracebacks may be distinct objects: grouping by identity alone
    # would split them, so the groups must still match the by-value grouping.
    assert len({id(f) for f in frames}) >= len(set(frames))
    assert group_traces(loaded) == _python_groups(loaded, monkeypatch)
    assert group_traces(loaded) == group_traces(snapshot)
    del kept


def test_bad_traces_are_refused() -> None:
    assert _module is not None
    with pytest.raises(TypeError):
        _module.group(["not a trace"])
    with pytest.raises(TypeError):
        _module.group([(0, 1)])  # too short
    with pytest.raises(TypeError):
        _module.group([(0, "many", ())])  # size not an int
    with pytest.raises(ValueError):
        _module.group([], key=-1)
    assert _module.group([]) == []
    key = (("a.py", 1),)
    assert _module.group([(0, 5, key), (0, 7, key)]) == [(key, 12, 2)]
