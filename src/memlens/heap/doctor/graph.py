"""The reverse reference graph of the whole heap, built once per diagnosis.

``gc.get_referrers()`` scans every object for every query, so asking it about each
object of a retaining path is quadratic. Instead the doctor walks the heap once
(``gc.get_referents`` of every GC-tracked object, mapped in C) and records, for each
object, who refers to it. Objects the GC does not track (str, bytes, int, …) appear
only as referents; they are kept in the graph only when they are targets, which is
how a leaked string held in a dict still gets a path.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from typing import Any


_UNTRACKED_CONTAINERS = frozenset({dict, tuple, list, set, frozenset})


class ReverseGraph:
    """``referrers(id) -> ids`` over a snapshot of the heap.

    Objects are kept alive by :attr:`objects` for as long as the graph lives, so ids
    stay valid; call :meth:`close` to release them.
    """

    def __init__(self, targets: Iterable[object] = (), ignore: Iterable[int] = ()) -> None:
        objs = gc.get_objects()
        self.ignore = set(ignore)
        self.ignore.add(id(objs))
        self.objects: dict[int, Any] = {id(o): o for o in objs}
        for t in targets:
            self.objects.setdefault(id(t), t)
        wanted = self.objects
        ignore_ids = self.ignore
        single: dict[int, int] = {}  # most objects have exactly one referrer
        multi: dict[int, list[int]] = {}
        get = gc.get_referents
        # Containers holding only atoms (a dict of str -> str, a tuple of ints) are
        # untracked by the GC, yet they retain things: walk them as they are met.
        untracked_types = _UNTRACKED_CONTAINERS
        pending: list[Any] = []
        batch: list[Any] = objs
        while batch:
            for obj, referents in zip(batch, map(get, batch)):
                oid = id(obj)
                if oid in ignore_ids:
                    continue
                for ref in referents:
                    rid = id(ref)
                    if rid not in wanted:
                        if type(ref) not in untracked_types:
                            continue
                        wanted[rid] = ref
                        pending.append(ref)
                    first = single.get(rid)
                    if first is None:
                        single[rid] = oid
                    else:
                        more = multi.get(rid)
                        if more is None:
                            multi[rid] = [oid]
                        else:
                            more.append(oid)
            batch, pending = pending, []
        self._single = single
        self._multi = multi
        del objs, batch

    def add_edge(self, holder: Any, child: Any) -> None:
        """Record a reference the GC does not report (a running frame's locals)."""
        hid, cid = id(holder), id(child)
        self.objects.setdefault(hid, holder)
        self.objects.setdefault(cid, child)
        if cid not in self._single:
            self._single[cid] = hid
        else:
            self._multi.setdefault(cid, []).append(hid)

    def __len__(self) -> int:
        return len(self.objects)

    def referrers(self, oid: int) -> list[int]:
        first = self._single.get(oid)
        if first is None:
            return []
        more = self._multi.get(oid)
        return [first, *more] if more else [first]

    def get(self, oid: int) -> Any:
        return self.objects.get(oid)

    def close(self) -> None:
        self.objects.clear()
        self._single.clear()
        self._multi.clear()
