"""Set the heap that existed before the diagnosis aside, so checkpoints cost what the
steps allocate, not what the program already held.

Every checkpoint runs a full collection and lists the GC-tracked objects. On a big
heap (a long pytest session, a service with millions of objects) those passes over
objects the doctor did not see being created cost seconds each, so a run spent its
budget on them and ended with whatever it had. ``gc.freeze()`` moves every object
alive at the start into CPython's permanent generation, which collections skip and
``gc.get_objects()`` does not list. Two things the doctor still needs from that
heap are taken once, before freezing: the containers (a module-level dict created at
import is the typical leaking holder; its length is read at every checkpoint) and
the count of objects per type (the baseline the sampling compares against).
:meth:`FrozenHeap.thaw` gives everything back to the oldest generation before the
analysis walks the whole heap.

A program that froze objects itself keeps its own freeze: the doctor then leaves the
GC alone (its checkpoints just cost more).
"""

from __future__ import annotations

import gc
from itertools import compress
from typing import Any

from memlens.heap.doctor.checkpoints import CONTAINER_TYPES, type_counts


class FrozenHeap:
    """The objects alive when the diagnosis began, frozen out of the GC's passes."""

    def __init__(self) -> None:
        self.containers: list[Any] = []
        self.types: dict[str, int] = {}
        self.active = False
        self.count = 0  # objects frozen (gc.get_freeze_count() walks them all)
        self.thawed = 0  # objects handed back by the last thaw (the oldest generation's tail)
        self.released = False  # handed back early (see :meth:`release`)
        self.program_frozen = False  # the program had frozen objects itself

    def freeze(self) -> None:
        """Collect, remember the containers and type counts, then ``gc.freeze()``."""
        if self.active:
            return
        if gc.get_freeze_count() > 0:
            self.program_frozen = True
            return
        gc.collect()
        objs = gc.get_objects()
        try:
            self.count = len(objs)
            self.types = type_counts(objs)
            self.containers = list(
                compress(objs, map(CONTAINER_TYPES.__contains__, map(type, objs)))
            )
        finally:
            del objs
        gc.freeze()
        self.active = True

    def release(self) -> None:
        """Give the frozen objects back during the run, for good: once the steps'
        heap has outgrown them, the checkpoints cost less with nothing frozen (see
        ``gcpasses``). ``gc.get_objects()`` lists them again from here on, so their
        containers and type counts are no longer added; they are no longer the
        oldest generation's tail either (later survivors come after them)."""
        if not self.active:
            return
        gc.unfreeze()
        self.active = False
        self.count = 0
        self.released = True
        self.thawed = 0
        self.containers = []
        self.types = {}

    def thaw(self) -> None:
        """Give the frozen objects back to the collector (idempotent)."""
        if self.active:
            self.thawed = gc.get_freeze_count()
            gc.unfreeze()
            self.active = False
        self.containers = []
