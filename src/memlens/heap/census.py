"""A census of the live heap: counts and bytes by type, and the objects that retain most.

*Retained* size is what would be freed with an object: its own size plus everything
only reachable through it, from the dominator tree of the reference graph (rooted at
the loaded modules, the threads' frames and whatever is held from C). Each large
object comes with a path from a named root (``module app → .cache → ['users']``).

This module imports only the standard library and nothing from memlens: the same
source runs inside another process when memlens attaches to it (see
:mod:`memlens.heap.attach`), and :func:`census` returns plain data (dicts, lists,
str, int, float) that ``marshal`` can carry back.

Two engines compute the same graph, dominators and sizes behind one interface
(``index``, ``node``, ``idom``, ``size``, ``retained``, ``successors``,
``predecessors``, ``largest``, ``types``):

- ``memlens._census.Census``, in C, when the caller passes it (``accel``: the module,
  or the path of its shared library, which the attach path passes when the target
  runs the same Python): one ``tp_traverse`` walk, Lengauer–Tarjan dominators, no
  Python object per node, and memory tracemalloc does not trace;
- :class:`_PyHeap` otherwise: the graph is built with one ``gc.get_referents`` call
  per batch (a marker between objects tells whose referents follow), kept as integer
  arrays, and the dominators are computed with the iterative Cooper–Harvey–Kennedy
  algorithm, in which every node with a single referrer (most of a heap) is settled
  without an intersection.
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

    def __init__(
        self, objs: list[Any], ignore: set[int], roots: list[Any], subst: dict[int, Any]
    ) -> None:
        ignore.update((id(self), id(ignore)))
        self.subst = subst
        nodes: list[Any] = [None]  # index 0 is the virtual root
        nodes.extend(compress(objs, map(not_, map(ignore.__contains__, map(id, objs)))))
        index: dict[int, int] = dict(zip(map(id, nodes), range(len(nodes))))
        del index[id(None)]
        for root in roots:  # a frame the GC does not track is still a root
            if id(root) not in index and id(root) not in ignore:
                index[id(root)] = len(nodes)
                nodes.append(root)
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
        subst = self.subst
        walked = list(map(subst.get, map(id, batch), batch)) if subst else batch
        flat = gc.get_referents(*chain.from_iterable(zip(walked, repeat(marker))))
        del walked
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


def _roots(frames: dict[int, Any]) -> tuple[list[Any], list[str]]:
    """Named roots: modules (by name, ``__main__`` first), then threads' frames."""
    objs: list[Any] = []
    labels: list[str] = []
    modules = sys.modules.copy()  # a thread may import meanwhile
    for name, module in sorted(modules.items(), key=lambda kv: kv[0] != "__main__"):
        objs.append(module)
        labels.append(f"module {name}")
    names = {}
    try:
        import threading

        names = {t.ident: t.name for t in threading.enumerate()}
    except Exception:  # noqa: BLE001 - thread names are a nicety
        pass
    for ident, frame in frames.items():
        f: Any = frame
        while f is not None:
            objs.append(f)
            labels.append(f"thread {names.get(ident, ident)} frame {f.f_code.co_name}()")
            f = f.f_back
    return objs, labels


def _frame_locals(roots: list[Any], ignore: set[int]) -> dict[int, Any]:
    """Stand-ins for running function frames: their referents plus their locals.

    A frame that is executing does not report its locals to the GC (CPython 3.11+
    keeps them on the thread's stack), so a list only a running function holds would
    look "held from C". The census walks this tuple instead of such a frame. The
    locals snapshot (``f_locals``) and the tuple are memlens's own: ignored.

    Before 3.13, ``f_locals`` is a dict cached on the frame that would keep every
    value alive until the function returns, even after the function dropped it (a
    leak in the target, for a main loop): it is emptied at once. With its keys gone
    nothing is written back to the locals (CPython merges that dict into the frame
    only for the keys it has).
    """
    out: dict[int, Any] = {}
    for f in roots:
        if type(f).__name__ != "frame" or id(f) in ignore or not f.f_code.co_flags & 1:
            continue  # not a frame, memlens's own, or module code (f_locals is globals)
        try:
            local_vars = f.f_locals
            stand_in = (*gc.get_referents(f), *local_vars.values())
            if type(local_vars) is dict:
                local_vars.clear()
        except Exception:  # noqa: BLE001 - without it the locals look held from C
            continue
        ignore.update((id(local_vars), id(stand_in)))
        out[id(f)] = stand_in
    ignore.add(id(out))
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


class _PyHeap:
    """The pure-Python engine, with the interface of ``memlens._census.Census``."""

    def __init__(
        self, objs: list[Any], ignore: set[int], roots: list[Any], substitute: dict[int, Any]
    ) -> None:
        ignore.add(id(self))
        graph = _Graph(objs, ignore, roots, substitute)
        index = graph.index
        root_ids = list(dict.fromkeys(filter(None, map(index.get, map(id, roots)))))
        order = _bfs(graph, root_ids)
        self.idoms, self.single, self.preds = _dominators(graph, root_ids, order)
        self.graph = graph
        self.edges = len(graph.targets)
        sizes = array("q", [0])
        sizes.extend(map(sys.getsizeof, graph.nodes[1:]))
        retained = array("q", sizes)
        idom = self.idoms
        for v in reversed(order):  # every node before its dominator
            d = idom[v]
            if d != v:
                retained[d] += retained[v]
        self.sizes, self.retains = sizes, retained
        self.total = sum(sizes)

    def __len__(self) -> int:
        return len(self.graph.nodes) - 1

    def index(self, obj: Any) -> int:
        i = self.graph.index.get(id(obj), -1)
        return -1 if i == _ROOT else i

    def node(self, i: int) -> Any:
        return self.graph.nodes[i]

    def idom(self, i: int) -> int:
        return self.idoms[i]

    def size(self, i: int) -> int:
        return self.sizes[i]

    def retained(self, i: int) -> int:
        return self.retains[i]

    def successors(self, i: int) -> list[int]:
        return list(self.graph.successors(i))

    def predecessors(self, i: int) -> list[int]:
        if i in self.preds:
            return self.preds[i]
        return [self.single[i]] if i in self.single else []

    def largest(self, k: int) -> list[int]:
        return nlargest(k, range(1, len(self.graph.nodes)), key=self.retains.__getitem__)

    def types(self) -> list[tuple[type, int, int]]:
        nodes = self.graph.nodes
        counts = Counter(map(type, nodes[1:]))
        type_bytes: dict[type, int] = dict.fromkeys(counts, 0)
        for tp, size in zip(map(type, nodes[1:]), self.sizes[1:]):
            type_bytes[tp] += size
        return [(tp, number, type_bytes[tp]) for tp, number in counts.items()]

    def close(self) -> None:
        del self.graph, self.idoms, self.single, self.preds, self.sizes, self.retains


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


def _chain(heap: Any, i: int) -> list[int]:
    """The dominator chain above ``i``, from the top."""
    out: list[int] = []
    seen = set()
    while i != _ROOT and i not in seen and i >= 0 and len(out) < 64:
        seen.add(i)
        out.append(i)
        i = heap.idom(i)
    out.reverse()
    return out


def _shortest(heap: Any, names: dict[int, str], i: int) -> list[int]:
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
            for p in heap.predecessors(v):
                if p != _ROOT and p not in came:
                    came[p] = v
                    nxt.append(p)
        frontier = nxt
    return [i]


def _path(heap: Any, names: dict[int, str], i: int) -> list[str]:
    """Steps from a named root to node ``i``.

    The dominator chain is preferred (every step on it must be passed to reach the
    object: it is *why* the object is retained); where it does not start at a named
    root (the object is reachable from several), the shortest referrer chain is used.
    """
    chain_ = _chain(heap, i)
    if not chain_ or chain_[0] not in names:
        chain_ = _shortest(heap, names, i)
    first = chain_[0]
    steps = [names.get(first, f"held from C: {describe(heap.node(first))}")]
    attribute = False  # the previous step was an object's __dict__: keys are attributes
    for a, b in zip(chain_, chain_[1:]):
        if b not in heap.successors(a):
            steps.append("…")
            attribute = False
            continue
        step = _edge(heap.node(a), heap.node(b))
        if step == ".__dict__":
            attribute = True
            continue
        if attribute and step.startswith("['") and step.endswith("']"):
            step = "." + step[2:-2]
        attribute = False
        steps.append(step.strip())
    return steps


def _load_accel(accel: Any) -> Any:
    """The C engine's module: ``accel`` itself, or loaded from the path it names.

    Loading by path keeps the target's import state alone (nothing under ``memlens``
    is imported there); any failure means the pure-Python engine.
    """
    if not isinstance(accel, str):
        return accel
    try:
        from importlib.machinery import ExtensionFileLoader
        from importlib.util import module_from_spec, spec_from_loader

        loader = ExtensionFileLoader("memlens._census", accel)
        spec = spec_from_loader("memlens._census", loader)
        if spec is None:
            return None
        module = module_from_spec(spec)
        loader.exec_module(module)
        return module
    except Exception:  # noqa: BLE001 - no accelerator: the pure-Python engine
        return None


def _skipped(heap: Any, roots: list[Any], labels: list[str]) -> set[int]:
    """Nodes never listed as "largest": module roots, their dicts, frames, sys.modules."""
    module_type = type(sys)
    skip: set[int] = set()
    for obj, label in zip(roots, labels):
        if label.startswith("module ") or " frame " in label:
            skip.add(heap.index(obj))
        md = getattr(obj, "__dict__", None) if isinstance(obj, module_type) else None
        if md is not None:
            skip.add(heap.index(md))
    skip.add(heap.index(sys.modules))
    skip.discard(-1)
    return skip


def _largest(
    heap: Any, names: dict[int, str], skip: set[int], top_objects: int, paths: bool
) -> list[dict[str, Any]]:
    """The objects with the largest retained size, an instance's ``__dict__`` folded in."""
    largest: list[dict[str, Any]] = []
    chosen: set[int] = set()
    for i in heap.largest(top_objects * 6):
        if len(largest) >= top_objects:
            break
        obj = heap.node(i)
        if i in skip or isinstance(obj, type) or type(obj).__name__ in ("frame", "function"):
            continue
        d = heap.idom(i)
        if (
            d in chosen
            and type(obj) is dict
            and type(heap.node(d)) not in _CONTAINER_SET
            and heap.retained(i) >= 0.8 * heap.retained(d)
        ):
            continue  # an instance's __dict__, already listed as the instance
        chosen.add(i)
        largest.append(
            {
                "type": type_name(type(obj)),
                "description": describe(obj),
                "shallow": heap.size(i),
                "retained": heap.retained(i),
                "path": _path(heap, names, i) if paths else [],
            }
        )
    return largest


def census(
    top_types: int = 25, top_objects: int = 15, paths: bool = True, accel: Any = None
) -> dict[str, Any]:
    """Count the live heap by type and find the objects with the largest retained size.

    ``accel`` is the ``memlens._census`` module (or its shared library's path) for the
    C engine; ``None`` uses the pure-Python one. Returns ``{"objects", "bytes",
    "types": [...], "largest": [...], "seconds", "engine"}``: each type row has
    ``type``, ``count``, ``bytes``; each large object ``type``, ``description``,
    ``shallow``, ``retained`` and ``path`` (steps from a named root).
    """
    t0 = time.perf_counter()
    module = _load_accel(accel)
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
    roots, labels = _roots(frames)
    ignore.update((id(ignore), id(frames), id(roots), id(labels)))
    if module is not None:
        ignore.add(id(module))
    substitute = _frame_locals(roots, ignore)
    objs = gc.get_objects()
    ignore.add(id(objs))
    engine = module.Census if module is not None else _PyHeap
    heap: Any = engine(objs, ignore, roots, substitute)
    del objs
    names: dict[int, str] = {}
    for obj, label in zip(roots, labels):
        i = heap.index(obj)
        if i > 0:
            names.setdefault(i, label)
    type_rows = [
        {"type": type_name(tp), "count": number, "bytes": size} for tp, number, size in heap.types()
    ]
    type_rows.sort(key=lambda r: r["bytes"], reverse=True)
    largest = _largest(heap, names, _skipped(heap, roots, labels), top_objects, paths)
    out = {
        "objects": len(heap),
        "bytes": heap.total,
        "edges": heap.edges,
        "types": type_rows[:top_types],
        "type_count": len(type_rows),
        "largest": largest,
        "engine": "c" if module is not None else "python",
        "seconds": time.perf_counter() - t0,
    }
    heap.close()
    del heap, roots, labels, frames, substitute
    return out
