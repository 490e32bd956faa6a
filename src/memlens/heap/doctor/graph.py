"""The reverse reference graph of the whole heap, built once per diagnosis.

``gc.get_referrers()`` scans every object for every query, so asking it about each
object of a retaining path is quadratic. Instead the doctor walks the heap once.

With the C accelerator (``memlens._heapgraph``, built by ``pip install``) the walk
calls each object's ``tp_traverse`` and keeps the edges as CSR arrays of 32-bit
node indices (counting sort by referent): linear time, ~16 bytes per object and 4
per edge, no Python object per edge. Nodes are found by the 4 KiB page of their
address (a bit per 16-byte slot), a table small enough to stay in cache. Without it
(no compiler at install time) the pure-Python build records every edge as a pair of
ids and sorts the pairs by referent so that ``referrers(x)`` is a binary search;
every step runs inside C iterators (``map``, ``chain``, ``compress``, ``sorted``).

Objects the GC does not track (str, bytes, int, …) appear only as referents; they
are kept as graph nodes when they are targets, which is how a leaked string held in
a dict still gets a path. Containers holding only atoms (a dict of str → str, a tuple
of ints) are untracked too, yet they retain things, so they are walked as they are
met.

A search from one object does not need the whole graph: in lazy mode the C
extension finds the referrers of a whole breadth-first level in one pass over the
heap (what ``gc.get_referrers`` does for one object), so a shallow path costs a pass
or two and no edge arrays; the whole graph is built if the search keeps going.
"""

from __future__ import annotations

import gc
import operator
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from itertools import accumulate, chain, compress, repeat
from typing import Any

from memlens.heap.native_ext import load_extension

_UNTRACKED_CONTAINERS = frozenset({dict, tuple, list, set, frozenset})


#: Level scans a lazy graph runs before it builds the whole graph instead. A pass
#: costs about one ``gc.get_referrers`` call and a full build about four passes, while
#: objgraph's search runs ``gc.collect()`` (several passes' worth) and then one
#: ``gc.get_referrers`` per object it visits: a path of one or two hops costs two passes
#: and no edge arrays, a longer one two passes more than a build
#: (``benchmarks/bench_graph_objgraph.py`` measures both against objgraph).
SCAN_LIMIT = 2


def live_classes() -> list[type]:
    """Every class alive, walked down from ``object`` through ``__subclasses__``.

    A few thousand calls instead of a type test on every heap object (which costs
    several heap passes on a big heap). ``type.__subclasses__`` is called unbound so
    that a metaclass cannot override it.
    """
    seen: dict[int, type] = {id(object): object}
    stack: list[type] = [object]
    while stack:
        subs: list[type] = type.__subclasses__(stack.pop())
        for sub in subs:
            if id(sub) not in seen:
                seen[id(sub)] = sub
                stack.append(sub)
    return list(seen.values())


class ReverseGraph:
    """``referrers(id) -> ids`` over a snapshot of the heap.

    Uses the C extension when it is built, else :class:`PyReverseGraph`. With the
    extension, ``lazy=True`` (the default for a single target) answers
    :meth:`prefetch` with one C pass over the heap per call (a breadth-first level)
    and builds the whole graph after :data:`SCAN_LIMIT` passes; ``lazy=False``
    builds it at once (the doctor, which asks about many samples).

    Nodes are kept alive until :meth:`close`, so ids stay valid; ``ignore`` holds
    ids of objects whose references do not count (the doctor's own frames and lists).
    """

    def __init__(
        self,
        targets: Iterable[object] = (),
        ignore: Iterable[int] = (),
        lazy: bool | None = None,
    ) -> None:
        ext = load_extension("_heapgraph")
        self.ignore = set(ignore)
        self._py: PyReverseGraph | None = None
        self._c: Any = None
        self._ext = ext
        self._extra: dict[int, list[int]] = {}
        self.scans = 0  # level passes run so far (lazy mode)
        self._objs: list[Any] | None = None
        # Lazy state: the nodes met so far (id -> object), those added, the referrers known.
        self._known: dict[int, Any] = {}
        self._added: list[Any] = []
        self._refs: dict[int, list[int]] = {}
        if ext is None:
            self._py = PyReverseGraph(targets, self.ignore)
            return
        target_list = list(targets)
        objs = gc.get_objects()
        self.ignore.add(id(objs))
        objs.extend(target_list)
        self._objs = objs
        self._known = {id(t): t for t in target_list}
        if lazy is None:
            # Several targets (the doctor's samples): one build answers them all, while
            # scans would cost a pass per level per target.
            lazy = len(target_list) <= 1
        if not lazy:
            self._build()

    def _build(self) -> None:
        """Build the whole graph (CSR arrays) and drop the lazy state."""
        assert self._ext is not None and self._objs is not None
        # take: the list's references move into the graph (no pass to take or drop them).
        self._c = self._ext.Graph(self._objs, self.ignore, take=True)
        for obj in self._known.values():
            self._c.add(obj)
        self._objs = None
        self._known = {}
        self._added = []
        self._refs = {}

    @property
    def accelerated(self) -> bool:
        """True when the C extension answers (a built graph or level scans)."""
        return self._ext is not None

    @property
    def built(self) -> bool:
        """True once the whole graph exists (always, without the C extension)."""
        return self._ext is None or self._c is not None

    def prefetch(self, oids: Iterable[int]) -> None:
        """Find the referrers of all of ``oids`` in one pass (one breadth-first level).

        A no-op on a built graph; past :data:`SCAN_LIMIT` passes the whole graph is
        built instead, once.
        """
        if self.built:
            return
        assert self._objs is not None and self._ext is not None
        todo = [oid for oid in dict.fromkeys(oids) if oid not in self._refs]
        targets = [self._known[oid] for oid in todo if oid in self._known]
        if not targets:
            return
        if self.scans >= SCAN_LIMIT:
            self._build()
            return
        self.scans += 1
        found = self._ext.scan(self._objs, targets, self.ignore)
        known = self._known
        for target, holders in zip(targets, found):
            ids = list(map(id, holders))
            known.update(zip(ids, holders))
            self._refs[id(target)] = ids
        for oid in todo:
            self._refs.setdefault(oid, [])

    def add(self, obj: object) -> None:
        """Make ``obj`` a node (e.g. an untracked target) without edges."""
        if self._c is not None:
            self._c.add(obj)
        elif self._py is not None:
            self._py.objects.setdefault(id(obj), obj)
        elif id(obj) not in self._known:
            self._known[id(obj)] = obj
            self._added.append(obj)

    def add_edge(self, holder: Any, child: Any) -> None:
        """Record a reference the GC does not report (a running frame's locals)."""
        if self._py is not None:
            self._py.add_edge(holder, child)
            return
        self.add(holder)
        self.add(child)
        self._extra.setdefault(id(child), []).append(id(holder))

    def classes(self) -> list[type]:
        """Every class alive (the candidates for class-attribute roots)."""
        return live_classes()

    def nodes(self) -> list[Any]:
        """Every node (one list; the graph keeps them alive)."""
        if self._py is not None:
            return list(self._py.objects.values())
        if self._c is None:
            assert self._objs is not None
            return self._objs + self._added
        return self._c.nodes()

    def __len__(self) -> int:
        if self._py is not None:
            return len(self._py)
        if self._c is None:
            assert self._objs is not None
            return len(self._objs)
        return len(self._c)

    @property
    def edges(self) -> int:
        """Edges known: every edge of a built graph; those found so far when lazy."""
        if self._py is not None:
            return self._py.edges
        extra = sum(map(len, self._extra.values()))
        if self._c is None:
            return sum(map(len, self._refs.values())) + extra
        return int(self._c.edges) + extra

    def referrers(self, oid: int) -> list[int]:
        if self._py is not None:
            return self._py.referrers(oid)
        if self._c is None:
            if oid not in self._refs:
                self.prefetch([oid])
            if self._c is None:
                out = self._refs.get(oid, [])
                extra = self._extra.get(oid)
                return out + extra if extra else list(out)
        out = self._c.referrers(oid)
        extra = self._extra.get(oid)
        return out + extra if extra else out

    def get(self, oid: int) -> Any:
        if self._py is not None:
            return self._py.get(oid)
        if self._c is None:
            return self._known.get(oid)
        return self._c.get(oid)

    def close(self) -> None:
        if self._py is not None:
            self._py.close()
        if self._c is not None:
            self._c.close()
        self._objs = None
        self._known = {}
        self._added = []
        self._refs = {}
        self._extra.clear()


class PyReverseGraph:
    """The pure-Python build of :class:`ReverseGraph` (no C extension).

    Objects are kept alive by :attr:`objects` for as long as the graph lives, so ids
    stay valid; call :meth:`close` to release them. ``ignore`` holds ids of objects
    whose references do not count (the doctor's own frames and lists).
    """

    def __init__(self, targets: Iterable[object] = (), ignore: Iterable[int] = ()) -> None:
        objs = gc.get_objects()
        self.ignore = set(ignore)
        self.ignore.add(id(objs))
        ids = list(map(id, objs))
        objects: dict[int, Any] = dict(zip(ids, objs))
        for t in targets:
            objects.setdefault(id(t), t)
        self.objects = objects
        dst_all: list[int] = []
        src_all: list[int] = []
        # The builder's own big lists are referenced from its frame: never walk them.
        for own in (objs, ids, objects, dst_all, src_all, self.ignore):
            self.ignore.add(id(own))
            objects[id(own)] = own
        batch, batch_ids = objs, ids
        while batch:
            fresh = self._edges(batch, batch_ids, dst_all, src_all)
            batch, batch_ids = fresh, list(map(id, fresh))
        order = sorted(range(len(dst_all)), key=dst_all.__getitem__)
        self._dst = list(map(dst_all.__getitem__, order))
        self._src = list(map(src_all.__getitem__, order))
        self._extra: dict[int, list[int]] = {}
        del objs, ids, batch, batch_ids, dst_all, src_all, order

    def _edges(
        self, batch: list[Any], batch_ids: list[int], dst_all: list[int], src_all: list[int]
    ) -> list[Any]:
        """Append the edges out of ``batch``; return untracked containers met first here.

        One ``gc.get_referents`` call over the whole batch, with a marker tuple after
        each object: the marker's single referent separates one object's referents
        from the next, so the referrer of every edge is known without a Python-level
        call per object. (The marker object is referenced only by its tuple, so no
        heap object can yield it.)
        """
        marker = (object(),)
        flat = gc.get_referents(*chain.from_iterable(zip(batch, repeat(marker))))
        sep = marker[0]
        is_sep = list(map(operator.is_, flat, repeat(sep)))
        owner = accumulate(is_sep)  # index of the referring object for each entry
        keep = list(map(operator.not_, is_sep))
        refs = list(compress(flat, keep))
        del flat, is_sep
        dst = list(map(id, refs))
        dst_all.extend(dst)
        src_all.extend(map(batch_ids.__getitem__, compress(owner, keep)))
        objects = self.objects
        unseen = map(operator.not_, map(objects.__contains__, dst))
        is_container = map(_UNTRACKED_CONTAINERS.__contains__, map(type, refs))
        fresh = list(compress(refs, map(operator.and_, is_container, unseen)))
        for obj in fresh:
            objects[id(obj)] = obj
        del refs, dst
        # Several referrers may hold the same fresh container: keep one copy.
        return list({id(o): o for o in fresh}.values())

    def add_edge(self, holder: Any, child: Any) -> None:
        """Record a reference the GC does not report (a running frame's locals)."""
        self.objects.setdefault(id(holder), holder)
        self.objects.setdefault(id(child), child)
        self._extra.setdefault(id(child), []).append(id(holder))

    def __len__(self) -> int:
        return len(self.objects)

    @property
    def edges(self) -> int:
        return len(self._dst) + sum(map(len, self._extra.values()))

    def referrers(self, oid: int) -> list[int]:
        lo = bisect_left(self._dst, oid)
        hi = bisect_right(self._dst, oid, lo)
        out = self._src[lo:hi]
        extra = self._extra.get(oid)
        return out + extra if extra else out

    def get(self, oid: int) -> Any:
        return self.objects.get(oid)

    def close(self) -> None:
        self.objects.clear()
        self._dst = []
        self._src = []
        self._extra.clear()
