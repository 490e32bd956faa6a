"""The checkpoint's C filters (``memlens._census``) agree with their Python fallbacks."""

from __future__ import annotations

import array
import collections
from typing import Any

import pytest

from memlens.heap.doctor import checkpoints, samples
from memlens.heap.doctor.checkpoints import _CONTAINER_TUPLE, Reader
from memlens.heap.doctor.sites import CodeMap
from tests.extensions import require_extension

census, pytestmark = require_extension("_census")


def _objects() -> tuple[list[Any], dict[int, tuple[str, int]]]:
    """Containers of every followed type and some that are not, with a baseline."""
    kept: list[Any] = [
        [1, 2, 3],
        {"a": 1, "b": 2, "c": 3},
        {1, 2, 3},
        collections.deque([1, 2, 3]),
        collections.OrderedDict(a=1, b=2, c=3),
        collections.defaultdict(list, a=[], b=[], c=[]),
        collections.Counter("abc"),
        (1, 2, 3, 4),  # a tuple is never followed
        [1, 2],  # too short at the baseline
        [9, 9, 9],  # not in the baseline
        "text",
    ]
    base = {id(obj): (type(obj).__name__, len(obj)) for obj in kept[:7]}
    base[id(kept[8])] = ("list", 2)
    return kept, base


def _reader(base: dict[int, tuple[str, int]]) -> Reader:
    reader = Reader(CodeMap(()), set())
    reader.baseline_lens = base
    order = sorted(base)
    reader._base_ids = array.array("Q", order)
    reader._base_sizes = array.array("q", [base[i][1] for i in order])
    return reader


def _grown(reader: Reader, objs: list[Any], accel: bool, monkeypatch: Any) -> list[int]:
    if not accel:
        monkeypatch.setattr(checkpoints, "load_extension", lambda name: None)
    try:
        return sorted(id(o) for o, _ in reader._grown_containers(objs))
    finally:
        monkeypatch.undo()


def test_grown_containers_in_c_and_python(monkeypatch: pytest.MonkeyPatch) -> None:
    objs, base = _objects()
    reader = _reader(base)
    assert _grown(reader, objs, True, monkeypatch) == []
    for obj in objs[:7]:  # every followed type grows by one entry
        if isinstance(obj, dict):
            obj["new"] = 1
        elif isinstance(obj, set):
            obj.add(99)
        else:
            obj.append(99)
    objs[8].append(3)  # now at the minimum, and longer than at the baseline
    objs[9].append(4)  # grew, but never in the baseline
    objs[7] = objs[7] + (5,)  # a new tuple: not followed
    want = sorted(id(o) for o in objs[:7]) + [id(objs[8])]
    assert _grown(reader, objs, True, monkeypatch) == sorted(want)
    assert _grown(reader, objs, False, monkeypatch) == sorted(want)
    # The length the C filter reports is the length now.
    found = dict((id(o), n) for o, n in reader._grown_containers(objs))
    assert found[id(objs[0])] == 4


def test_grown_containers_rejects_mismatched_buffers() -> None:
    assert census is not None
    with pytest.raises(ValueError):
        census.grown_containers(
            [[1, 2, 3]], _CONTAINER_TUPLE, array.array("Q", [1, 2]), array.array("q", [1]), 3
        )


def test_pick_by_address_in_c_and_python(monkeypatch: pytest.MonkeyPatch) -> None:
    assert census is not None
    wanted = [[k] * 3 for k in range(5)]
    others = [{"k": k} for k in range(100)]
    ids = {id(obj) for obj in wanted}
    objs = others[:50] + wanted + others[50:]
    picked = census.pick_by_address(objs, array.array("Q", sorted(ids)))
    assert [id(o) for o in picked] == [id(o) for o in wanted]
    assert census.pick_by_address(objs, array.array("Q")) == []
    # find_containers, with and without the extension, on the live heap.
    assert samples.find_containers(ids) == {id(o): o for o in wanted}
    monkeypatch.setattr(samples, "load_extension", lambda name: None)
    assert samples.find_containers(ids) == {id(o): o for o in wanted}
