"""The cyclic garbage collector paused for the length of a fit.

A fit allocates a few hundred thousand long-lived objects (entries, profiler items,
keep-set strings, summaries) and frees few of them, so the collector's young
generations keep filling and every object is traversed again and again, the whole
heap on each full collection: measured on a 500-turn session, about an eighth of the
fit's CPU time, and more in a process with a large heap of its own. A fit creates no
reference cycles it depends on being collected, so nothing is lost by collecting
after it instead: :func:`gc_paused` disables the collector and enables it again when
the outermost pause ends, only if it was enabled when the first one began (fits on
several threads share one pause; a collector disabled by the caller stays disabled).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
#: pauses under way (in every thread), and whether the first one disabled the collector
_state = {"depth": 0, "disabled": False}


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Within this block the cyclic collector does not run (see the module's doc)."""
    with _lock:
        if _state["depth"] == 0:
            _state["disabled"] = gc.isenabled()
            if _state["disabled"]:
                gc.disable()
        _state["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["depth"] -= 1
            if _state["depth"] == 0 and _state["disabled"]:
                _state["disabled"] = False
                gc.enable()


__all__ = ["gc_paused"]
