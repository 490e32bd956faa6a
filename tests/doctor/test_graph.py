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
