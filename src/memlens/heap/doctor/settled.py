"""The watch's heap *settled* between checkpoints, so the steps' own collections skip it.

A step that keeps thousands of objects per call (a plotting library's figures) makes
the heap grow fast, and CPython's automatic full collections traverse all of it: on
such a step, most of the watch's time went to collections of objects the previous
checkpoints had already seen, and the run ran out of budget before its window had
widened enough for a verdict.

After a checkpoint of the watch or the look, everything alive is moved into the permanent
generation (``gc.freeze()``): automatic collections until the next checkpoint then
cost what the steps made since, and the next checkpoint's opening collection too.
That checkpoint hands the settled heap back (``gc.unfreeze()``) before it lists the
objects, so its readings see the whole heap.

What the freeze cannot see is *settled garbage*: objects alive at one checkpoint
that became unreachable cycles later stay until the heap is handed back and
collected in full. Every :data:`SETTLE_CHECK`-th settled window ends with such a
full collection; if it frees anything, the program makes that kind of garbage
(a cache evicting cyclic entries, say) and settling stops for the rest of the run,
so at most one checkpoint's readings carried it.

Settling is used only when nothing else is frozen (the heap frozen at the start, see
``frozen``, or the program's own freeze: they share CPython's one permanent
generation) and when the program's collector is on (with it off nothing is
collected anyway, and the checkpoint counts the unreachable cycles in full).
"""

from __future__ import annotations

import gc

#: Every this many settled windows, the checkpoint collects the whole heap.
SETTLE_CHECK = 2


class SettledHeap:
    """The heap frozen between two checkpoints of the watch or the look."""

    def __init__(self) -> None:
        self.enabled = True  # False for good once settled garbage was found
        self.active = False  # frozen now
        self.windows = 0  # settled windows since the last full collection
        self.settled = 0  # settled windows in all
        self.checks = 0  # full collections that looked for settled garbage
        self.garbage = 0  # unreachable objects the check that stopped settling found

    def settle(self) -> None:
        """At the end of a checkpoint: freeze everything alive (O(1) in CPython)."""
        if not self.enabled or self.active:
            return
        gc.freeze()
        self.active = True
        self.windows += 1
        self.settled += 1

    def collect(self) -> None:
        """The checkpoint's opening collection, with the settled heap handed back.

        A full collection of what is not settled (which also empties the free
        lists), then the settled heap back to the oldest generation; every
        :data:`SETTLE_CHECK`-th window, a full collection of everything after it.
        """
        if not self.active:
            gc.collect()
            return
        gc.collect()  # the steps' own garbage since the last checkpoint
        self.unsettle()
        if self.windows >= SETTLE_CHECK:
            self.windows = 0
            self.checks += 1
            found = gc.collect()
            if found:
                self.enabled = False
                self.garbage = found

    def unsettle(self) -> None:
        """Hand the settled heap back to the collector (idempotent)."""
        if self.active:
            gc.unfreeze()
            self.active = False

    def stop(self) -> None:
        """No more settling in this run (the watch ended); the heap handed back."""
        self.unsettle()
        self.enabled = False
