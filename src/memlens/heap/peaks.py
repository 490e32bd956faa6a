"""Memory peaks per measurement, over one process-wide peak.

tracemalloc keeps a single peak, and ``tracemalloc.reset_peak()`` resets it for
every reader; the sampling tracer (``memlens._sampler``) likewise keeps one peak of
its estimated live bytes. A profiler wants the peak *during its call* (so it
resets), while a monitor or an enclosing session wants the peak since *it* began
(so a reset must not lower it). A :class:`PeakWatch` is one such reader of one
source: :func:`reset_peak` folds the peak reached so far into every other open
watch of that source before resetting, so each watch reads the highest total since
it (re)started, whoever reset meanwhile.
"""

from __future__ import annotations

# The C half only: tracemalloc.py is imported on first snapshot (see heap_meter.py).
import _tracemalloc
import threading
import weakref
from typing import Any, Protocol


class PeakSource(Protocol):
    """A process-wide total with one resettable peak."""

    def active(self) -> bool: ...
    def read(self) -> tuple[int, int]: ...  # (current, peak)
    def reset(self) -> None: ...


class _Tracemalloc:
    """Traced bytes (tracemalloc)."""

    def active(self) -> bool:
        return bool(_tracemalloc.is_tracing())

    def read(self) -> tuple[int, int]:
        current, peak = _tracemalloc.get_traced_memory()
        return int(current), int(peak)

    def reset(self) -> None:
        _tracemalloc.reset_peak()


class SampledSource:
    """Estimated live sampled bytes (the ``memlens._sampler`` extension module)."""

    def __init__(self, ext: Any) -> None:
        self.ext = ext

    def active(self) -> bool:
        return bool(self.ext.is_running())

    def read(self) -> tuple[int, int]:
        live, peak = self.ext.peak()
        return round(live), round(peak)

    def reset(self) -> None:
        self.ext.reset_peak()


TRACEMALLOC: PeakSource = _Tracemalloc()

_lock = threading.Lock()
# The open watches, as a tuple rebuilt when one opens or closes (rare) so that a
# reset, which the line tracer makes at every line event, iterates without
# allocating (every allocation there is a traced one, charged to a line).
_watches: tuple[weakref.ReferenceType[PeakWatch], ...] = ()


def _register(watch: PeakWatch) -> None:
    global _watches
    with _lock:
        _watches = (*(r for r in _watches if r() is not None), weakref.ref(watch))


def _unregister(watch: PeakWatch) -> None:
    global _watches
    with _lock:
        _watches = tuple(r for r in _watches if r() is not None and r() is not watch)


class PeakWatch:
    """The peak of a source (traced memory by default) since this watch opened
    (or :meth:`restart`)."""

    def __init__(self, source: PeakSource = TRACEMALLOC) -> None:
        self.source = source
        self._carried = 0
        _register(self)

    def restart(self) -> None:
        """Start counting the peak from now (other watches keep theirs)."""
        reset_peak(restarting=self, source=self.source)

    def peak(self) -> int:
        """Highest total since the watch (re)started; what it carried when the source
        is not running."""
        if not self.source.active():
            return self._carried
        return max(self._carried, self.source.read()[1])

    @property
    def carried(self) -> bool:
        """True when the peak is one the source has since reset (folded in here), so
        what the source says about its own peak is not this watch's peak."""
        return self.source.active() and self._carried > self.source.read()[1]

    def close(self) -> None:
        _unregister(self)


def reset_peak(restarting: PeakWatch | None = None, source: PeakSource = TRACEMALLOC) -> None:
    """Reset the source's peak (``tracemalloc.reset_peak()`` by default), leaving
    every open watch's peak intact."""
    if not source.active():
        return
    with _lock:
        peak = source.read()[1]
        for ref in _watches:
            watch = ref()
            if (
                watch is not None
                and watch is not restarting
                and peak > watch._carried
                and _same(watch.source, source)
            ):
                watch._carried = peak
        source.reset()
        if restarting is not None:
            restarting._carried = 0


def reset_traced_peak(restarting: PeakWatch) -> None:
    """:func:`reset_peak` of traced memory for ``restarting``, for a caller that
    resets at every event (the line tracer): when no other watch is open, just the
    C call."""
    watches = _watches
    if len(watches) == 1 and watches[0]() is restarting:
        _tracemalloc.reset_peak()
        if restarting._carried:
            restarting._carried = 0
        return
    reset_peak(restarting)


def _same(a: PeakSource, b: PeakSource) -> bool:
    if isinstance(a, SampledSource) and isinstance(b, SampledSource):
        return a.ext is b.ext
    return a is b
