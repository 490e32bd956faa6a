"""Is a growing holder bounded? A cache that stops by itself is not a leak.

Two sources: interpreter and library caches with a known bound, and bounds written
in the user's code on the retaining path (``lru_cache(maxsize=…)``, ``deque(maxlen=…)``,
cachetools-style ``maxsize``).
"""

from __future__ import annotations

import collections
import sys
from typing import Any

from memlens.heap.doctor.retention import Path

# Interpreter caches with a fixed bound: growth there stops by itself.
_KNOWN_BOUNDED = {
    ("re", "_cache"): "re's pattern cache (bounded by re._MAXCACHE)",
    ("re", "_cache2"): "re's pattern cache (bounded)",
    ("linecache", "cache"): "linecache (one entry per source file)",
    ("sre_compile", "_cache"): "re's compiler cache (bounded)",
}


def library_bound(path: Path, code: Any) -> str | None:
    """Why a library root is a bounded cache, or None."""
    module = path.root_module or ""
    mod = sys.modules.get(module)
    filename = getattr(mod, "__file__", None) or ""
    if not filename or code.is_user(filename):
        return None
    if path.root_kind == "lru_cache":
        try:
            maxsize = path.root_object.cache_info().maxsize
        except Exception:  # noqa: BLE001 - not a functools wrapper after all
            maxsize = None
        if maxsize is not None:
            return f"a library lru_cache bounded at {maxsize} entries"
    if path.root_kind == "module" and path.hops:
        name = path.hops[0].label.removeprefix("global ")
        known = _KNOWN_BOUNDED.get((module, name))
        if known:
            return known
    return None


def explicit_bound(path: Path) -> str | None:
    """A bound stated in code on the retaining path: an lru_cache's maxsize, a deque's
    maxlen, a cachetools-style ``maxsize``; growth below it is a cache filling."""
    if path.root_kind == "lru_cache":
        try:
            info = path.root_object.cache_info()
        except Exception:  # noqa: BLE001
            info = None
        if info is not None and info.maxsize is not None and info.currsize < info.maxsize:
            return f"lru_cache bounded at {info.maxsize:,} entries ({info.currsize:,} so far)"
    for obj in path.objects:
        if isinstance(obj, collections.deque) and obj.maxlen is not None and len(obj) < obj.maxlen:
            return f"deque bounded at maxlen={obj.maxlen:,} ({len(obj):,} so far)"
        maxsize = getattr(type(obj), "maxsize", None)
        if isinstance(maxsize, property):
            try:
                bound, current = obj.maxsize, obj.currsize
            except Exception:  # noqa: BLE001
                continue
            if isinstance(bound, (int, float)) and current < bound:
                return f"{type(obj).__name__} bounded at maxsize={bound:,} ({current:,} so far)"
    return None
