"""Retaining paths to each kind of named root, from one reverse graph per heap."""

from __future__ import annotations

import functools
import logging
import sys
import threading
import types

import pytest

from memlens.heap.doctor.graph import ReverseGraph
from memlens.heap.doctor.retention import Roots, find_path

# Holders, each a different kind of root.
GLOBAL_CACHE: dict[str, object] = {}


class Registry:
    items: list[object] = []


class Service:
    def __init__(self) -> None:
        self._subscribers: list[object] = []


SERVICE = Service()


def _make_recorder():
    seen: list[object] = []

    def record(x: object) -> None:
        seen.append(x)

    return record


record = _make_recorder()


def remember(x: object, memory: list[object] = []) -> None:  # noqa: B006 - on purpose
    memory.append(x)


@functools.cache
def tokenize(text: str) -> list[str]:
    return text.split()


_tls = threading.local()


class Payload:
    pass


@pytest.fixture(autouse=True, params=["lazy", "built"])
def graph_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on level scans and on the whole graph built (the pure-Python
    graph is covered in test_graph.py: it takes seconds on the test process's heap)."""
    import memlens.heap.doctor.graph as graph_module

    if request.param == "built":
        monkeypatch.setattr(graph_module, "SCAN_LIMIT", 0)
    return str(request.param)


def _path_for(obj: object):
    # The test's own frames hold ``obj`` in locals: leave them out, as the doctor
    # leaves out its own.
    frames: set[int] = set()
    f = sys._getframe()
    while f is not None:
        frames.add(id(f))
        f = f.f_back
    graph = ReverseGraph([obj], ignore=frames)
    try:
        return find_path(obj, graph, Roots(graph, frames))
    finally:
        graph.close()


def test_module_global_holding_untracked_str() -> None:
    text = "".join(["untracked ", "string"])
    GLOBAL_CACHE["k"] = text
    path = _path_for(text)
    assert path.root == f"module {__name__} → global GLOBAL_CACHE"
    assert [h.label for h in path.hops] == ["global GLOBAL_CACHE", "['k']"]


def test_class_attribute() -> None:
    p = Payload()
    Registry.items.append(p)
    assert _path_for(p).root == f"class {__name__}.Registry → attribute items"


def test_singleton_attribute() -> None:
    p = Payload()
    SERVICE._subscribers.append(p)
    assert _path_for(p).root == f"module {__name__} → global SERVICE → ._subscribers"


def test_closure_cell_of_named_function() -> None:
    p = Payload()
    record(p)
    path = _path_for(p)
    assert path.root == f"module {__name__} → global record → closure cell seen"


def test_default_argument() -> None:
    p = Payload()
    remember(p)
    assert _path_for(p).root == f"module {__name__} → global remember → default argument memory="


def test_lru_cache_of_named_function() -> None:
    result = tokenize("a b c d")
    path = _path_for(result)
    assert path.root == f"functools.lru_cache of {__name__}.tokenize"


def test_thread_local() -> None:
    p = Payload()
    _tls.value = [p]
    path = _path_for(p)
    assert path.root == f"module {__name__} → global _tls"
    assert "per-thread dicts" in [h.label for h in path.hops]


def test_live_frame_of_a_thread() -> None:
    ready, stop = threading.Event(), threading.Event()
    box: list[Payload] = []

    def worker() -> None:
        kept = Payload()
        box.append(kept)
        ready.set()
        stop.wait(10)

    t = threading.Thread(target=worker, name="holder-thread")
    t.start()
    ready.wait(10)
    target = box.pop()
    try:
        path = _path_for(target)
        assert path.root_kind == "frame"
        assert "holder-thread" in path.root and "local kept" in path.root
    finally:
        stop.set()
        t.join()


def test_stored_traceback_keeps_frame_locals() -> None:
    errors: list[BaseException] = []
    GLOBAL_CACHE["errors"] = errors

    def fail() -> None:
        local_payload = Payload()  # noqa: F841 - kept alive by the traceback
        raise ValueError("x")

    try:
        fail()
    except ValueError as exc:
        errors.append(exc)
    frame = errors[0].__traceback__.tb_next.tb_frame  # type: ignore[union-attr]
    target = frame.f_locals["local_payload"]
    path = _path_for(target)
    assert path.root.endswith("global GLOBAL_CACHE")
    assert any(isinstance(o, types.TracebackType) for o in path.objects)


def test_logging_handler_list() -> None:
    logger = logging.getLogger("memlens.test.handlers")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        assert _path_for(handler).root == "logging handler list of logger 'memlens.test.handlers'"
    finally:
        logger.removeHandler(handler)


def test_unreachable_object_has_no_root() -> None:
    a: dict[str, object] = {}
    a["self"] = a
    ident = id(a)
    graph = ReverseGraph([a])
    try:
        # Only our own frame refers to it: ignore that frame and nothing is left.
        ignore = {id(sys._getframe())}
        graph.ignore |= ignore
        path = find_path(a, graph, Roots(graph, ignore))
        assert not path.found and id(a) == ident
    finally:
        graph.close()


@pytest.mark.parametrize("n", [1, 3])
def test_graph_counts_every_referrer(n: int) -> None:
    target = Payload()
    holders = [[target] for _ in range(n)]
    graph = ReverseGraph([target])
    try:
        refs = graph.referrers(id(target))
        assert {id(h) for h in holders} <= set(refs)
    finally:
        graph.close()


def test_a_class_no_module_names_is_not_a_root() -> None:
    from unittest import mock

    from memlens.heap.doctor.retention import _named_class

    # unittest.mock makes a subclass per mock, whose magic-method attributes point
    # back at the mock: that class is kept by the mock, not a root holding it.
    assert not _named_class(type(mock.MagicMock()))
    assert _named_class(mock.MagicMock) and _named_class(int)

    def factory() -> type:
        class Local:
            pass

        return Local

    assert not _named_class(factory())


def test_what_the_gc_does_not_list_is_found_below_a_tracked_object() -> None:
    import gc

    from memlens.heap.doctor.samples import untracked_below

    payload = {"to": "user@example.invalid", "id": 7}
    args = (payload,)  # a tuple holding a dict stays tracked (like mock's call args)
    gc.collect()
    assert gc.is_tracked(args) and not gc.is_tracked(payload)
    seen: list[object] = []
    untracked_below(args, seen.append)
    assert any(o is payload for o in seen) and "user@example.invalid" in seen


def test_the_users_data_leads_over_the_librarys_wrapper_that_holds_it() -> None:
    from memlens.heap.doctor.builder import Made, payload_index

    class Future:  # stands for a library type on the path
        pass

    wrapper = Made(by_user=False, own=frozenset({Future}), through=frozenset({dict}))
    data = Made(by_user=True, own=frozenset(), through=frozenset({dict, Future}))
    unrelated = Made(by_user=True, own=frozenset(), through=frozenset({dict}))
    assert payload_index([wrapper, unrelated, data]) == 2
    assert payload_index([wrapper, unrelated]) == 0  # not held by the wrapper
    assert payload_index([data, wrapper]) == 0  # the biggest is the user's already
