"""The collector passes a checkpoint needs, with one pass over the heap at most.

A checkpoint reads the interpreter's allocated blocks twice: at the start of its
window, when the program's collectable cycles are gone and the free lists are empty,
and at its end, to charge what the doctor itself still holds to the doctor. Both
readings need empty free lists (a freed tuple or dict kept for reuse is still an
allocated block), and CPython empties them only at the end of a full collection.

A full collection is a pass over every tracked object outside the permanent
generation: on a heap that grows by thousands of objects per call (a plotting
library's figures) that is most of a checkpoint's cost (~0.9 s at 740k objects), and
a window used to take two or three of them. Two cheaper ways do the same:

- the free lists are emptied by a full collection over *nothing*: freeze every
  object, collect, unfreeze (tens of microseconds on any heap). That moves the whole
  permanent generation back, so it is used only while nothing else is frozen;
- the doctor's own reference cycles, which the window's end must free, are all young:
  automatic collections are held off during the window, so everything it made since
  the start, and nothing older, is in the young generations.
"""

from __future__ import annotations

import gc


def free_lists_clearable(frozen: bool = False) -> bool:
    """True when :func:`clear_free_lists` may run: nothing is frozen (it unfreezes).

    ``frozen``: the caller knows something is frozen (the doctor's own frozen heap),
    so the permanent generation is not counted: ``gc.get_freeze_count()`` walks it
    object by object (~50 ms at 360k objects, twice a checkpoint, on a big heap).
    """
    return not frozen and gc.get_freeze_count() == 0


def clear_free_lists() -> None:
    """Empty the interpreter's free lists without a pass over the heap.

    Only when :func:`free_lists_clearable` (``gc.unfreeze()`` hands back everything
    frozen); everything ends in the oldest generation, as after a full collection.
    """
    gc.freeze()
    try:
        gc.collect()  # nothing left to traverse; emptying the free lists is all it does
    finally:
        gc.unfreeze()


class Hold:
    """Automatic collections held off between :meth:`start` and :meth:`release`.

    So that the doctor's own objects made in a checkpoint's window stay young, and a
    young collection at its end frees exactly the doctor's cycles. Release is
    idempotent and also runs when the engine ends, so an interrupted checkpoint never
    leaves the program's collector disabled.
    """

    def __init__(self) -> None:
        self.held = False

    def start(self) -> None:
        """Disable automatic collections if the program has them on (allocates nothing)."""
        if not self.held and gc.isenabled():
            gc.disable()
            self.held = True

    def release(self) -> None:
        """Give the program its automatic collections back."""
        if self.held:
            self.held = False
            gc.enable()
