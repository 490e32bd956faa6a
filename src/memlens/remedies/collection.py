"""Cyclic garbage collection in short pauses: what the recovery ladder's GC step runs.

A full ``gc.collect()`` holds the GIL while it scans every tracked object: 90 ms
for 400k objects on a quiet machine, 0.3-0.45 s under load, and no thread or
executor helps, since nothing else runs Python meanwhile. CPython 3.11/3.12 offer
no way to scan part of the oldest generation, so :class:`ShortPauseCollector`
keeps pauses short by choosing what to scan:

1. the young generations (0, then 1) always: they hold few objects, and most
   cyclic garbage dies there; the GIL is handed over between them;
2. the oldest generation only when the pass is predicted to fit ``max_pause``.
   That is the case when the long-lived heap is frozen (:func:`freeze_long_lived`
   after start-up, or ``gc.freeze()`` in a prefork master): frozen objects are
   never scanned, so a full pass covers only what was allocated since. Otherwise
   the pass is skipped and the result says why and what it would have cost.

The prediction counts allocated memory blocks (``sys.getallocatedblocks()``,
cheap) not in the frozen heap, at a cost per block learned from every full
collection this process has timed (its own passes and the interpreter's
automatic ones, through ``gc.callbacks``), and at least 300 ns a block: about what
finding and freeing a garbage object takes (scanning a live one takes ~70 ns on a
quiet 2-core machine). Blocks that are not containers
(``str``, ``int``) are counted too, which errs on the safe side; freeing frozen
objects and allocating as many new ones hides them from the count until the next
timed full collection corrects the cost.

Frozen objects that later become cyclic garbage stay until ``gc.unfreeze()`` and a
full collection (:func:`thaw`, one long pause at a moment you choose); with
``refreeze=True`` the survivors of each full pass join the frozen heap so the
next pass is short again, at the price of keeping their future cycles too.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

# The least a full pass is assumed to cost per allocated block scanned: about what a
# garbage object costs to find and free (a live one takes ~70 ns on a quiet machine).
DEFAULT_BLOCK_COST = 300e-9
# Timed collections over fewer blocks than this say more about fixed costs than per-block ones.
_MIN_LEARN_BLOCKS = 20_000


@dataclass(frozen=True)
class Pass:
    """One ``gc.collect(generation)``: what it collected and how long it held the GIL."""

    generation: int
    collected: int
    pause: float  # seconds


@dataclass(frozen=True)
class ShortPauseResult:
    """What :meth:`ShortPauseCollector.collect` did."""

    passes: tuple[Pass, ...]
    full: bool  # the oldest generation was collected
    predicted_full_pause: float  # seconds, the prediction the decision used
    skipped: str  # why the full pass did not run ('' when it did)
    refrozen: bool

    @property
    def collected(self) -> int:
        return sum(p.collected for p in self.passes)

    @property
    def longest_pause(self) -> float:
        return max((p.pause for p in self.passes), default=0.0)

    def describe(self) -> str:
        gens = "-".join(str(p.generation) for p in self.passes) or "none"
        text = (
            f"{self.collected} objects collected (generations {gens}, "
            f"longest pause {self.longest_pause * 1e3:.1f} ms)"
        )
        return text + (f"; full pass skipped: {self.skipped}" if self.skipped else "")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["collected"] = self.collected
        data["longest_pause"] = self.longest_pause
        return data


class _FullCollectionClock:
    """Times every collection of the oldest generation in this process (``gc.callbacks``)
    and keeps the cost per scanned block, and the frozen heap's size in blocks."""

    def __init__(self) -> None:
        self.costs: deque[float] = deque(maxlen=8)
        self.frozen_blocks = 0  # allocated blocks when the heap was last frozen
        self._started: tuple[float, int] | None = None
        self._lock = threading.Lock()
        self._installed = False

    def install(self) -> None:
        with self._lock:
            if not self._installed:
                gc.callbacks.append(self._callback)
                self._installed = True

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != len(gc.get_threshold()) - 1:
            return
        if phase == "start":
            self._started = (time.perf_counter(), self.scanned_blocks())
        elif self._started is not None:
            began, blocks = self._started
            self._started = None
            if blocks >= _MIN_LEARN_BLOCKS:
                self.costs.append((time.perf_counter() - began) / blocks)

    def scanned_blocks(self) -> int:
        """Allocated blocks outside the frozen heap: what a full pass would scan, at most."""
        return max(0, sys.getallocatedblocks() - self.frozen_blocks)

    def block_cost(self) -> float:
        # The highest of the recent costs: a pause is worse when it is longer than said.
        return max((DEFAULT_BLOCK_COST, *self.costs))

    def predict(self) -> float:
        return self.scanned_blocks() * self.block_cost()

    def frozen(self) -> None:
        self.frozen_blocks = sys.getallocatedblocks()


_clock = _FullCollectionClock()


def predict_full_pause() -> float:
    """Seconds a full collection would hold the GIL now, as predicted (module docstring)."""
    _clock.install()
    return _clock.predict()


def freeze_long_lived() -> float:
    """Collect everything once, then ``gc.freeze()`` the survivors: the long-lived heap.

    Call it after start-up (or in a prefork master before forking), when one long
    pause does no harm; from then on full passes, automatic or the ladder's, scan
    only what was allocated since. Returns the pause of that one collection.
    """
    _clock.install()
    began = time.perf_counter()
    gc.collect()
    pause = time.perf_counter() - began
    gc.freeze()
    _clock.frozen()
    return pause


def note_frozen() -> None:
    """Tell the collector the heap was just frozen (``gc.freeze()`` called elsewhere)."""
    _clock.install()
    _clock.frozen()


def thaw() -> float:
    """``gc.unfreeze()`` and one full collection (a long pause): reclaims cycles among
    objects that were frozen. Returns the pause."""
    _clock.install()
    gc.unfreeze()
    _clock.frozen_blocks = 0
    began = time.perf_counter()
    gc.collect()
    return time.perf_counter() - began


def _yield_gil() -> None:
    time.sleep(0)  # a waiting thread (the event loop) takes the GIL


class ShortPauseCollector:
    """Collect cyclic garbage with every pause at most about ``max_pause`` seconds
    (see the module docstring); ``max_pause=None`` collects everything, however long."""

    def __init__(
        self,
        max_pause: float | None = 0.005,
        *,
        refreeze: bool = False,
        between: Callable[[], None] = _yield_gil,
    ) -> None:
        if max_pause is not None and max_pause <= 0:
            raise ValueError("max_pause must be positive seconds, or None for no bound")
        self.max_pause = max_pause
        self.refreeze = refreeze
        self.between = between
        _clock.install()

    @staticmethod
    def predicted_full_pause() -> float:
        """Seconds a full collection would take now, as predicted (module docstring)."""
        return predict_full_pause()

    def collect(self, stop: Callable[[], bool] | None = None) -> ShortPauseResult:
        """Young generations, then the oldest if it fits; ``stop()`` true ends early."""
        oldest = len(gc.get_threshold()) - 1
        passes: list[Pass] = []
        for gen in range(oldest):
            passes.append(self._pass(gen))
            self.between()
            if stop is not None and stop():
                return ShortPauseResult(tuple(passes), False, 0.0, "no longer needed", False)
        predicted = _clock.predict()
        if self.max_pause is not None and predicted > self.max_pause:
            cost = f"it would take about {predicted * 1e3:.0f} ms (> {self.max_pause * 1e3:g} ms)"
            if _clock.frozen_blocks:
                why = (
                    f"{cost} over the objects allocated since the heap was frozen; "
                    "refreeze=True keeps that set small, a larger max_pause allows it"
                )
            else:
                why = (
                    f"{cost}; freeze the long-lived heap after start-up (freeze_long_lived()) "
                    "so it scans only newer objects"
                )
            return ShortPauseResult(tuple(passes), False, predicted, why, False)
        passes.append(self._pass(oldest))
        refrozen = False
        if self.refreeze:
            gc.freeze()
            _clock.frozen()
            refrozen = True
        return ShortPauseResult(tuple(passes), True, predicted, "", refrozen)

    @staticmethod
    def _pass(generation: int) -> Pass:
        began = time.perf_counter()
        collected = gc.collect(generation)
        return Pass(generation, collected, time.perf_counter() - began)
