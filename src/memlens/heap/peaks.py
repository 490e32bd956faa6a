"""Traced-memory peaks per measurement, over one process-wide tracemalloc peak.

tracemalloc keeps a single peak, and ``tracemalloc.reset_peak()`` resets it for
every reader. A profiler wants the peak *during its call* (so it resets), while a
monitor or an enclosing session wants the peak since *it* began (so a reset must not
lower it). A :class:`PeakWatch` is one such reader: :func:`reset_peak` folds the peak
reached so far into every other open watch before resetting, so each watch reads
the highest traced total since it (re)started, whoever reset meanwhile.
"""

from __future__ import annotations

# The C half only: tracemalloc.py is imported on first snapshot (see heap_meter.py).
import _tracemalloc
import threading
import weakref

_lock = threading.Lock()
_watches: weakref.WeakSet[PeakWatch] = weakref.WeakSet()


class PeakWatch:
    """The peak of traced memory since this watch opened (or :meth:`restart`)."""

    def __init__(self) -> None:
        self._carried = 0
        with _lock:
            _watches.add(self)

    def restart(self) -> None:
        """Start counting the peak from now (other watches keep theirs)."""
        reset_peak(restarting=self)

    def peak(self) -> int:
        """Highest traced bytes since the watch (re)started; 0 when not tracing."""
        if not _tracemalloc.is_tracing():
            return self._carried
        return max(self._carried, _tracemalloc.get_traced_memory()[1])

    def close(self) -> None:
        with _lock:
            _watches.discard(self)


def reset_peak(restarting: PeakWatch | None = None) -> None:
    """``tracemalloc.reset_peak()`` that leaves every open watch's peak intact."""
    if not _tracemalloc.is_tracing():
        return
    with _lock:
        peak = _tracemalloc.get_traced_memory()[1]
        for watch in list(_watches):
            if watch is not restarting:
                watch._carried = max(watch._carried, peak)
        _tracemalloc.reset_peak()
        if restarting is not None:
            restarting._carried = 0
