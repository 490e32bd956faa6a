"""The reverse graph answers the same in its three forms: level scans (lazy), the
whole graph built in C, and the pure-Python build."""

from __future__ import annotations

import gc
import sys

import pytest

import memlens.heap.doctor.graph as graph_module
from memlens.heap.doctor.graph import ReverseGraph, live_classes
from memlens.heap.doctor.retention import Roots, find_path
from memlens.heap.native_ext import load_extension

needs_c = pytest.mark.skipif(load_extension("_heapgraph") is None, reason="C extension not built")


class Item:
    def __init__(self, payload: object) -> None:
        self.payload = payload


CHAIN_HOLDER: list[object] = []


def _graph(mode: str, targets: list[object], monkeypatch: pytest.MonkeyPatch) -> ReverseGraph:
    if mode == "python":
        monkeypatch.setenv("MEMLENS_NO_EXTENSIONS", "1")
    return ReverseGraph(targets, ignore={id(sys._getframe())}, lazy=mode == "lazy")


MODES = ["lazy", "built", "python"]


@pytest.mark.parametrize("mode", MODES)
def test_referrers_include_untracked_containers(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "".join(["held ", "only by untracked containers"])
    pair = (text, "other")  # a tuple of str: untracked once the GC has seen it
    table = {"k": text}  # a dict of str -> str: untracked from the start
    holder = [pair, table]
    gc.collect()
    assert not gc.is_tracked(pair) and not gc.is_tracked(table)
    graph = _graph(mode, [text], monkeypatch)
    try:
        assert graph.accelerated == (mode != "python")
        refs = set(graph.referrers(id(text)))
        assert {id(pair), id(table)} <= refs
        assert id(holder) in set(graph.referrers(id(pair)))
        assert graph.get(id(pair)) is pair
    finally:
        graph.close()


@pytest.mark.parametrize("mode", ["lazy", "built"])
def test_every_referrer_is_found_once_per_reference(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = Item(None)
    holders = [[target] for _ in range(20)]  # a level wider than the small-level path
    graph = _graph(mode, [target], monkeypatch)
    try:
        refs = graph.referrers(id(target))
        assert {id(h) for h in holders} <= set(refs)
        # The next level: all 20 lists at once (one pass when lazy).
        ids = [id(h) for h in holders]
        graph.prefetch(ids)
        for h in holders:
            assert id(h) not in graph.referrers(id(h))
            assert id(holders) in graph.referrers(id(h))
    finally:
        graph.close()


@needs_c
def test_lazy_graph_passes_once_per_level_then_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    target = Item(None)
    chain: object = target
    for _ in range(6):
        chain = Item(chain)
    CHAIN_HOLDER.append(chain)
    del chain
    frames = {id(sys._getframe())}
    try:
        monkeypatch.setattr(graph_module, "SCAN_LIMIT", 64)
        graph = ReverseGraph([target], ignore=frames)
        try:
            path = find_path(target, graph, Roots(graph, frames))
            assert path.found and path.root == f"module {__name__} → global CHAIN_HOLDER"
            assert not graph.built and 6 <= graph.scans <= 16
            lazy_labels = [h.label for h in path.hops]
        finally:
            graph.close()
        monkeypatch.setattr(graph_module, "SCAN_LIMIT", 3)
        graph = ReverseGraph([target], ignore=frames)
        try:
            path = find_path(target, graph, Roots(graph, frames))
            assert graph.built and graph.scans == 3
            assert [h.label for h in path.hops] == lazy_labels
        finally:
            graph.close()
    finally:
        CHAIN_HOLDER.clear()


@needs_c
def test_ignored_objects_are_not_walked() -> None:
    target = Item(None)
    hidden = [target]
    shown = [target]
    graph = ReverseGraph([target], ignore={id(hidden), id(sys._getframe())})
    try:
        refs = set(graph.referrers(id(target)))
        assert id(shown) in refs and id(hidden) not in refs
    finally:
        graph.close()


def test_several_targets_build_the_whole_graph() -> None:
    targets = [Item(i) for i in range(2)]
    graph = ReverseGraph(targets)
    try:
        assert graph.built
    finally:
        graph.close()


def test_live_classes_finds_nested_and_dynamic_classes() -> None:
    dynamic = type("Dynamic", (Item,), {})

    class Meta(type):
        def __subclasses__(cls) -> list[type]:  # type: ignore[override]
            raise AssertionError("must not be asked")

    class WithMeta(metaclass=Meta):
        pass

    classes = {id(c) for c in live_classes()}
    assert {id(Item), id(dynamic), id(WithMeta), id(Meta), id(int)} <= classes


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a: object, b: object) -> None:
        self.a = a
        self.b = b


def _mixed_heap() -> tuple[list[object], list[object]]:
    """A heap fragment of every kind of node the C build indexes differently: instances
    with and without ``__dict__``, slots, untracked tuples and dicts (nodes met while
    walking), nested untracked containers, a shared referent, cycles, and targets that
    are atoms. Returns (everything, targets)."""
    # Enough nodes that every 16-byte slot of a page holds some of them.
    words = ["".join(["word-", str(i)]) for i in range(400)]
    pairs = [(words[i], words[i + 1]) for i in range(0, 400, 2)]  # untracked after a collection
    tables = [{"w": w} for w in words[:100]]  # dict of str -> str: untracked from the start
    nested = [((words[i], (words[i + 1],)), frozenset([words[i]])) for i in range(100)]
    items = [Item(pairs[i % len(pairs)]) for i in range(3000)]
    shared = Item(None)
    slotted = [Slotted(items[i], shared) for i in range(1000)]
    cycle_a, cycle_b = Item(None), Item(None)
    cycle_a.payload, cycle_b.payload = cycle_b, cycle_a
    groups = [items[:10], items[10:], {"x": slotted, "y": tables}, [nested, cycle_a, shared]]
    everything: list[object] = [*words, *pairs, *tables, *nested, *items, shared, *slotted]
    everything += [cycle_a, cycle_b, *groups, words, pairs, tables, nested, items, slotted]
    targets: list[object] = [words[3], words[3], pairs[2], nested[1][0], items[4], shared]
    return everything, targets


@needs_c
def test_built_graph_matches_the_pure_python_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C build (page-indexed nodes, CSR edges) and the pure-Python build (sorted id
    pairs) give the same referrers, in the same order, for every node of a mixed heap."""
    everything, targets = _mixed_heap()
    gc.collect()
    frames = {id(sys._getframe())}
    mine = {id(o) for o in everything}
    graphs = {"built": ReverseGraph(targets, ignore=frames, lazy=False)}
    monkeypatch.setenv("MEMLENS_NO_EXTENSIONS", "1")
    graphs["python"] = ReverseGraph(targets, ignore=frames)
    try:
        assert graphs["built"].built and not graphs["python"].accelerated
        # Atoms are nodes of the C build only when they are targets (the Python build
        # records an edge to every referent).
        nodes = [o for o in everything if not isinstance(o, str) or o is targets[0]]
        grains = {id(o) % 4096 // 16 for o in nodes}
        assert len(grains) > 200  # nearly every slot of a page (sizes vary with the build)
        assert all(graphs["built"].get(id(o)) is o for o in nodes)
        atoms = [o for o in everything if isinstance(o, str) and o is not targets[0]]
        assert all(graphs["built"].get(id(o)) is None for o in atoms)
        for obj in nodes:
            answers = {
                mode: [r for r in g.referrers(id(obj)) if r in mine] for mode, g in graphs.items()
            }
            assert answers["built"] == answers["python"], obj
        assert sum(len(graphs["built"].referrers(id(o))) for o in nodes) > len(nodes)
        # A str held only by untracked tuples: reached through them.
        word = targets[0]
        assert set(graphs["built"].referrers(id(word))) >= {id(everything[400 + 1])}
    finally:
        for g in graphs.values():
            g.close()


@needs_c
def test_graph_takes_the_lists_references() -> None:
    ext = load_extension("_heapgraph")
    target = Item(None)
    holder = [target]
    objs = [holder, target, holder]  # a duplicate is dropped (and its reference)
    before = sys.getrefcount(holder)
    graph = ext.Graph(objs, (), take=True)
    try:
        assert objs == []
        assert len(graph) == 2 and graph.nodes() == [holder, target]
        assert sys.getrefcount(holder) == before - 1  # two list references became one
        assert graph.referrers(id(target)) == [id(holder)]
    finally:
        graph.close()
    assert sys.getrefcount(holder) == before - 2
    with pytest.raises(TypeError, match="take=True needs objects to be a list"):
        ext.Graph((holder,), take=True)


@needs_c
def test_an_unaligned_atom_is_a_node() -> None:
    """Statically allocated strings may lie off the 16-byte grid the page index uses."""
    candidates = [s for s in dir(object) + dir(type) if id(s) % 16]
    if not candidates:
        pytest.skip("every str here is 16-byte aligned")
    word = candidates[0]
    holder = {"k": word, "j": Item(None)}  # tracked (holds an instance)
    graph = ReverseGraph([word, Item(None)], ignore={id(sys._getframe())})
    try:
        assert graph.built
        assert id(holder) in graph.referrers(id(word))
        assert graph.get(id(word)) is word
    finally:
        graph.close()
