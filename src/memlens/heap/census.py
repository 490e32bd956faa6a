"""A census of the live heap: counts and bytes by type, and the objects that retain most.

*Retained* size is what would be freed with an object: its own size plus everything
only reachable through it, from the dominator tree of the reference graph (rooted at
the loaded modules, the threads' frames and whatever is held from C). Each large
object comes with a path from a named root (``module app → .cache → ['users']``).

This module imports only the standard library and nothing from memlens: the same
source runs inside another process when memlens attaches to it (see
:mod:`memlens.heap.attach`), and :func:`census` returns plain data (dicts, lists,
str, int, float) that ``marshal`` can carry back.

How it stays fast at a million objects: the graph is built with one
``gc.get_referents`` call per batch (a marker between objects tells whose referents
follow), kept as integer arrays, and the dominators are computed with the iterative
Cooper–Harvey–Kennedy algorithm, in which every node with a single referrer (most of
a heap) is settled without an intersection.
"""

from __future__ import annotations

import gc
import sys
import time
from array import array
from collections import Counter
from heapq import nlargest
from itertools import accumulate, chain, compress, count, repeat
from operator import add, is_, not_, sub
from typing import Any

_CONTAINER_SET = frozenset({dict, list, tuple, set, frozenset})
_ROOT = 0  # index of the virtual root that holds every named root


class _Graph:
    """Nodes (objects) and forward edges in CSR form (``starts``/``targets``)."""

    def __init__(self, ignore: set[int]) -> None:
        ignore.update((id(self), id(ignore)))
        objs = gc.get_objects()
        ignore.add(id(objs))
        nodes: list[Any] = [None]  # index 0 is the virtual root
        nodes.extend(compress(objs, map(not_, map(ignore.__contains__, map(id, objs)))))
        del objs
        index: dict[int, int] = dict(zip(map(id, nodes), range(len(nodes))))
        del index[id(None)]
        # References to memlens's own objects point at the virtual root: harmless.
        index.update(zip(ignore, repeat(_ROOT)))
        self.nodes = nodes
        self.index = index
        targets = array("q")
        walked: list[tuple[list[int], list[int]]] = []
        batch = nodes[1:]
        batch_idx: list[int] = list(range(1, len(nodes)))
        while batch:
            counts, batch = self._walk(batch, targets)
            walked.append((batch_idx, counts))
            batch_idx = list(map(index.__getitem__, map(id, batch)))
        counts_all = array("q", bytes(8 * len(nodes)))
        for idx, counts in walked:
            for i, c in zip(idx, counts):
                counts_all[i] = c
        # Batches cover increasing node ranges and each is in node order, so the
        # edges are grouped by source in node order: prefix sums give the CSR starts.
        self.starts = array("q", accumulate(counts_all, initial=0))
        self.counts = counts_all
        self.targets = targets

    def _walk(self, batch: list[Any], targets: array[int]) -> tuple[list[int], list[Any]]:
        """Append the edges out of ``batch``; return referent counts and new containers.

        One ``gc.get_referents`` call covers the whole batch, with a marker tuple after
        each object: the marker's only referent separates one object's referents from
        the next, so no Python-level call per object is needed.
        """
        marker = (object(),)
        flat = gc.get_referents(*chain.from_iterable(zip(batch, repeat(marker))))
        is_sep = list(map(is_, flat, repeat(marker[0])))
        ends = list(compress(count(), is_sep))
        counts = list(map(sub, ends, chain((-1,), ends)))
        counts = list(map(sub, counts, repeat(1)))
        refs = list(compress(flat, map(not_, is_sep)))
        del flat, is_sep, ends
        index = self.index
        new = list(compress(refs, map(not_, map(index.__contains__, map(id, refs)))))
        unique = list(dict(zip(map(id, new), new)).values())
        nodes = self.nodes
        index.update(zip(map(id, unique), count(len(nodes))))
        nodes.extend(unique)
        targets.extend(map(index.__getitem__, map(id, refs)))
        fresh = list(compress(unique, map(_CONTAINER_SET.__contains__, map(type, unique))))
        return counts, fresh

    def successors(self, i: int) -> array[int]:
        return self.targets[self.starts[i] : self.starts[i + 1]]


def _roots(graph: _Graph, frames: dict[int, Any]) -> list[tuple[int, str]]:
    """Named roots: modules (by name), then threads' frames."""
    index = graph.index
    out: list[tuple[int, str]] = []
    for name, module in sorted(sys.modules.items(), key=lambda kv: kv[0] != "__main__"):
        i = index.get(id(module))
        if i:
            out.append((i, f"module {name}"))
    names = {}
    try:
        import threading

        names = {t.ident: t.name for t in threading.enumerate()}
    except Exception:  # noqa: BLE001 - thread names are a nicety
        pass
    for ident, frame in frames.items():
        f: Any = frame
        while f is not None:
            i = index.get(id(f))
            if i:
                out.append((i, f"thread {names.get(ident, ident)} frame {f.f_code.co_name}()"))
            f = f.f_back
    return out


def _bfs(graph: _Graph, roots: list[int]) -> array[int]:
    """Nodes in breadth-first order from the virtual root (its edges: ``roots``).

    Every level is one set difference, so the walk runs at C speed. Roots are the
    named ones, then objects nothing refers to (held from C), then, until all are
    reached, the first unreached node (a cycle held only from C), appended to ``roots``.
    """
    n = len(graph.nodes)
    starts, targets = graph.starts, graph.targets
    referred = set(targets)
    unreferred = compress(range(1, n), map(not_, map(referred.__contains__, range(1, n))))
    first = list(dict.fromkeys(chain(roots, unreferred)))
    del referred
    seen = bytearray(n)
    seen[_ROOT] = 1
    order = array("q", [_ROOT])
    frontier = first
    scan = 1
    while True:
        while frontier:
            fresh = [v for v in frontier if not seen[v]]
            for v in fresh:
                seen[v] = 1
            order.extend(fresh)
            lo = map(starts.__getitem__, fresh)
            hi = map(starts.__getitem__, map(add, fresh, repeat(1)))
            frontier = list(set(chain.from_iterable(map(targets.__getitem__, map(slice, lo, hi)))))
        scan = seen.find(0, scan)
        if scan < 0:
            return order
        roots.append(scan)
        frontier = [scan]


def _dominators(
    graph: _Graph, extra_roots: list[int], order: array[int]
) -> tuple[array[int], dict[int, int], dict[int, list[int]]]:
    """Immediate dominators (Cooper, Harvey & Kennedy, "A Simple, Fast Dominance
    Algorithm"), numbered by breadth-first discovery: a dominator is always
    discovered before the nodes it dominates, which is all ``intersect`` needs.

    A node with a single referrer is settled without work (the referrer is its
    immediate dominator), and nodes with no referents (str, int, ...) dominate
    nothing, so they are settled once, after the others have converged.
    """
    n = len(graph.nodes)
    counts, targets = graph.counts, graph.targets
    indeg = Counter(targets)
    for r in extra_roots:
        indeg[r] += 1
    srcs = array("q")
    srcs.extend(chain.from_iterable(map(repeat, range(n), counts)))
    single: dict[int, int] = dict(zip(targets, srcs))  # the last referrer of each node
    many = {t for t, c in indeg.items() if c > 1 and t != _ROOT}
    preds: dict[int, list[int]] = {t: [] for t in many}
    for t, s in compress(zip(targets, srcs), map(many.__contains__, targets)):
        preds[t].append(s)
    del srcs
    for r in extra_roots:
        if r in preds:
            preds[r].append(_ROOT)
    num = array("q", bytes(8 * n))  # higher = discovered earlier
    for k, v in enumerate(order):
        num[v] = n - k
    idom = array("q", map(single.get, range(n), repeat(_ROOT)))
    idom[_ROOT] = _ROOT
    multi = [v for v in order if v in preds]
    for v in multi:
        idom[v] = -1

    def intersect(a: int, b: int) -> int:
        while a != b:
            while num[a] < num[b]:
                a = idom[a]
            while num[b] < num[a]:
                b = idom[b]
        return a

    def settle(v: int, first: bool) -> bool:
        new = -1
        nv = num[v]
        for p in preds[v]:
            d = idom[p]
            if d == new or p == new:
                continue  # new already dominates p (the common case of many siblings)
            if d != -1 and (not first or num[p] > nv):
                new = p if new == -1 else intersect(p, new)
                if new == _ROOT:
                    break  # nothing is above the root
        if new != -1 and idom[v] != new:
            idom[v] = new
            return True
        return False

    inner = [v for v in multi if counts[v]]
    leaves = [v for v in multi if not counts[v]]
    for v in inner:
        settle(v, True)
    changed = True
    while changed:
        changed = False
        for v in inner:
            if settle(v, False):
                changed = True
    for v in leaves:
        settle(v, False)
    return idom, single, preds


def type_name(tp: type) -> str:
    module = getattr(tp, "__module__", "builtins")
    name = getattr(tp, "__qualname__", tp.__name__)
    return name if module == "builtins" else f"{module}.{name}"


def describe(obj: Any) -> str:
    """A short description that never calls the object's own ``__repr__``."""
    tp = type(obj)
    if tp in (str, bytes, bytearray):
        text = obj[:40]
        return f"{tp.__name__} of {len(obj):,} {'chars' if tp is str else 'bytes'} {text!r}"
    if tp in (int, float, bool, complex) or obj is None:
        return f"{tp.__name__} {obj!r}"
    if tp in (dict, list, tuple, set, frozenset):
        return f"{tp.__name__} of {len(obj):,} items"
    if isinstance(obj, type(sys)):
        return f"module {obj.__name__}"
    if isinstance(obj, type):
        return f"class {type_name(obj)}"
    name = getattr(obj, "__qualname__", None) if callable(obj) else None
    if isinstance(name, str):
        return f"{type_name(tp)} {name}"
    return f"{type_name(tp)} object"


def _edge(parent: Any, child: Any) -> str:
    """How ``parent`` refers to ``child``, as a path step."""
    try:
        if isinstance(parent, dict):
            for k, v in parent.items():
                if v is child:
                    return f"[{k!r}]"
                if k is child:
                    return "(a key)"
        elif isinstance(parent, (list, tuple)):
            for i, v in enumerate(parent):
                if v is child:
                    return f"[{i}]"
        elif isinstance(parent, (set, frozenset)):
            return "(an element)"
        elif isinstance(parent, type(sys)):
            for k, v in vars(parent).items():
                if v is child:
                    return f".{k}"
            if child is vars(parent):
                return ".__dict__"
        elif type(parent).__name__ == "frame":
            for k, v in parent.f_locals.items():
                if v is child:
                    return f" local {k}"
        return _attribute_step(parent, child)
    except Exception:  # noqa: BLE001 - a path step is a nicety; never fail the census
        pass
    return f" → {type(child).__name__}"


def _attribute_step(parent: Any, child: Any) -> str:
    """Name the attribute of ``parent`` that holds ``child``, without side effects.

    Reading ``obj.__dict__`` would create the dict of an instance whose attributes
    are stored inline (3.11+), and ``getattr`` could run a property, so candidate
    names come from the class's slots and the attribute names its methods use, and
    only names that are not class attributes (descriptors) are read.
    """
    cls = type(parent)
    for r in gc.get_referents(parent):
        if r is child and type(r) is dict:
            return ".__dict__"  # (or another dict it holds: the next step names the key)
    candidates: list[str] = []
    for klass in cls.__mro__:
        slots = vars(klass).get("__slots__", ())
        candidates.extend([slots] if isinstance(slots, str) else list(slots))
        for value in list(vars(klass).values()):
            code = getattr(getattr(value, "__func__", value), "__code__", None)
            if code is not None:
                candidates.extend(code.co_names)
    for name in dict.fromkeys(candidates):
        if not isinstance(name, str) or name.startswith("__"):
            continue
        if any(name in vars(k) and k is not object for k in cls.__mro__ if not _is_slot(k, name)):
            continue
        try:
            if object.__getattribute__(parent, name) is child:
                return f".{name}"
        except Exception:  # noqa: BLE001
            continue
    return f" → {type(child).__name__}"


def _is_slot(klass: type, name: str) -> bool:
    return type(vars(klass).get(name)).__name__ == "member_descriptor"


def _chain(links: array[int], i: int) -> list[int]:
    out: list[int] = []
    seen = set()
    while i != _ROOT and i not in seen and i >= 0 and len(out) < 64:
        seen.add(i)
        out.append(i)
        i = links[i]
    out.reverse()
    return out


def _shortest(
    single: dict[int, int], preds: dict[int, list[int]], names: dict[int, str], i: int
) -> list[int]:
    """The shortest referrer chain from a named root to ``i`` (breadth-first, backwards)."""
    came: dict[int, int] = {i: -1}
    frontier = [i]
    while frontier and len(came) < 200_000:
        nxt: list[int] = []
        for v in frontier:
            if v in names:
                out = [v]
                while came[out[-1]] != -1:
                    out.append(came[out[-1]])
                return out
            for p in preds.get(v) or ([single[v]] if v in single else []):
                if p != _ROOT and p not in came:
                    came[p] = v
                    nxt.append(p)
        frontier = nxt
    return [i]


def _path(
    graph: _Graph,
    links: tuple[array[int], dict[int, int], dict[int, list[int]]],
    names: dict[int, str],
    i: int,
) -> list[str]:
    """Steps from a named root to node ``i``.

    The dominator chain is preferred (every step on it must be passed to reach the
    object: it is *why* the object is retained); where it does not start at a named
    root (the object is reachable from several), the shortest referrer chain is used.
    """
    idom, single, preds = links
    chain_ = _chain(idom, i)
    if not chain_ or chain_[0] not in names:
        chain_ = _shortest(single, preds, names, i)
    nodes = graph.nodes
    first = chain_[0]
    steps = [names.get(first, f"held from C: {describe(nodes[first])}")]
    attribute = False  # the previous step was an object's __dict__: keys are attributes
    for a, b in zip(chain_, chain_[1:]):
        if b not in graph.successors(a):
            steps.append("…")
            attribute = False
            continue
        step = _edge(nodes[a], nodes[b])
        if step == ".__dict__":
            attribute = True
            continue
        if attribute and step.startswith("['") and step.endswith("']"):
            step = "." + step[2:-2]
        attribute = False
        steps.append(step.strip())
    return steps


def census(top_types: int = 25, top_objects: int = 15, paths: bool = True) -> dict[str, Any]:
    """Count the live heap by type and find the objects with the largest retained size.

    Returns ``{"objects", "bytes", "types": [...], "largest": [...], "seconds"}``: each
    type row has ``type``, ``count``, ``bytes``; each large object ``type``,
    ``description``, ``shallow``, ``retained`` and ``path`` (steps from a named root).
    """
    t0 = time.perf_counter()
    frame = sys._getframe()
    ignore = {id(frame), id(globals())}
    own = globals()["__name__"]
    for value in list(globals().values()):  # this module's functions and classes
        if getattr(value, "__module__", None) == own:
            ignore.add(id(value))
    f: Any = frame
    while f is not None and f.f_globals is globals():
        ignore.add(id(f))
        f = f.f_back
    # Materialize every thread's frames before the snapshot, so that what running
    # functions hold in their locals is reached through them (not "held from C").
    frames = sys._current_frames()
    ignore.add(id(frames))
    graph = _Graph(ignore)
    named = _roots(graph, frames)
    names: dict[int, str] = {}
    for i, label in named:
        names.setdefault(i, label)
    root_ids = list(dict.fromkeys(i for i, _ in named))
    order = _bfs(graph, root_ids)
    links = _dominators(graph, root_ids, order)
    idom = links[0]
    nodes = graph.nodes
    getsizeof = sys.getsizeof
    sizes = array("q", [0])
    sizes.extend(map(getsizeof, nodes[1:]))
    retained = array("q", sizes)
    for v in reversed(order):  # every node before its dominator
        d = idom[v]
        if d != v:
            retained[d] += retained[v]
    types = Counter(map(type, nodes[1:]))
    type_bytes: dict[type, int] = dict.fromkeys(types, 0)
    for tp, size in zip(map(type, nodes[1:]), sizes[1:]):
        type_bytes[tp] += size
    type_rows: list[dict[str, Any]] = []
    for tp, number in types.items():
        type_rows.append({"type": type_name(tp), "count": number, "bytes": type_bytes[tp]})
    type_rows.sort(key=lambda r: r["bytes"], reverse=True)
    module_type = type(sys)
    skip = {i for i, label in named if label.startswith("module ") or " frame " in label}
    for i in list(skip):
        md = getattr(nodes[i], "__dict__", None) if isinstance(nodes[i], module_type) else None
        if md is not None:
            j = graph.index.get(id(md))
            if j is not None:
                skip.add(j)
    j = graph.index.get(id(sys.modules))
    if j is not None:
        skip.add(j)
    largest: list[dict[str, Any]] = []
    chosen: set[int] = set()
    candidates = nlargest(top_objects * 6, range(1, len(nodes)), key=retained.__getitem__)
    for i in candidates:
        if len(largest) >= top_objects:
            break
        obj = nodes[i]
        if i in skip or isinstance(obj, type) or type(obj).__name__ in ("frame", "function"):
            continue
        d = idom[i]
        if (
            d in chosen
            and type(obj) is dict
            and type(nodes[d]) not in _CONTAINER_SET
            and retained[i] >= 0.8 * retained[d]
        ):
            continue  # an instance's __dict__, already listed as the instance
        chosen.add(i)
        largest.append(
            {
                "type": type_name(type(obj)),
                "description": describe(obj),
                "shallow": sizes[i],
                "retained": retained[i],
                "path": _path(graph, links, names, i) if paths else [],
            }
        )
    out = {
        "objects": len(nodes) - 1,
        "bytes": sum(sizes),
        "edges": len(graph.targets),
        "types": type_rows[:top_types],
        "type_count": len(type_rows),
        "largest": largest,
        "seconds": time.perf_counter() - t0,
    }
    del graph, nodes, order, idom, links, sizes, retained
    return out
