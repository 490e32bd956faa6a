"""The reverse reference graph of the whole heap, built once per diagnosis.

``gc.get_referrers()`` scans every object for every query, so asking it about each
object of a retaining path is quadratic. Instead the doctor walks the heap once.

With the C accelerator (``memlens._heapgraph``, built by ``pip install``) the walk
calls each object's ``tp_traverse`` and keeps the edges as CSR arrays of 32-bit
node indices (counting sort by referent): linear time, ~48 bytes per object and 4
per edge, no Python object per edge. Without it (no compiler at install time) the
pure-Python build records every edge as a pair of ids and sorts the pairs by
referent so that ``referrers(x)`` is a binary search; every step runs inside C
iterators (``map``, ``chain``, ``compress``, ``sorted``).

Objects the GC does not track (str, bytes, int, …) appear only as referents; they
are kept as graph nodes when they are targets, which is how a leaked string held in
a dict still gets a path. Containers holding only atoms (a dict of str → str, a tuple
of ints) are untracked too, yet they retain things, so they are walked as they are
met.
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


class ReverseGraph:
    """``referrers(id) -> ids`` over a snapshot of the heap.

    Uses the C graph when the extension is built, else :class:`PyReverseGraph`.
    Nodes are kept alive until :meth:`close`, so ids stay valid; ``ignore`` holds
    ids of objects whose references do not count (the doctor's own frames and lists).
    """

    def __init__(self, targets: Iterable[object] = (), ignore: Iterable[int] = ()) -> None:
        ext = load_extension("_heapgraph")
        self.ignore = set(ignore)
        self._py: PyReverseGraph | None = None
        self._c: Any = None
        self._extra: dict[int, list[int]] = {}
        if ext is None:
            self._py = PyReverseGraph(targets, self.ignore)
            return
        objs = gc.get_objects()
        self.ignore.add(id(objs))
        objs.extend(targets)
        self._c = ext.Graph(objs, self.ignore)
        del objs

    @property
    def accelerated(self) -> bool:
        """True when the graph was built by the C extension."""
        return self._c is not None

    def add(self, obj: object) -> None:
        """Make ``obj`` a node (e.g. an untracked target) without edges."""
        if self._c is not None:
            self._c.add(obj)
        else:
            assert self._py is not None
            self._py.objects.setdefault(id(obj), obj)

    def add_edge(self, holder: Any, child: Any) -> None:
        """Record a reference the GC does not report (a running frame's locals)."""
        if self._py is not None:
            self._py.add_edge(holder, child)
            return
        self._c.add(holder)
        self._c.add(child)
        self._extra.setdefault(id(child), []).append(id(holder))

    def nodes(self) -> list[Any]:
        """Every node (one list; the graph keeps them alive)."""
        if self._py is not None:
            return list(self._py.objects.values())
        return self._c.nodes()

    def __len__(self) -> int:
        return len(self._py) if self._py is not None else len(self._c)

    @property
    def edges(self) -> int:
        if self._py is not None:
            return self._py.edges
        return int(self._c.edges) + sum(map(len, self._extra.values()))

    def referrers(self, oid: int) -> list[int]:
        if self._py is not None:
            return self._py.referrers(oid)
        out: list[int] = self._c.referrers(oid)
        extra = self._extra.get(oid)
        return out + extra if extra else out

    def get(self, oid: int) -> Any:
        return self._py.get(oid) if self._py is not None else self._c.get(oid)

    def close(self) -> None:
        if self._py is not None:
            self._py.close()
        if self._c is not None:
            self._c.close()
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
