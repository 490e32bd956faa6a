"""Is a growing holder bounded? A cache that stops by itself is not a leak.

Two sources: interpreter and library caches with a known bound, and bounds written
in the user's code on the retaining path (``lru_cache(maxsize=…)``, ``deque(maxlen=…)``,
cachetools-style ``maxsize``).
"""

from __future__ import annotations

import collections
import re
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
    maxlen, a cachetools-style ``maxsize``, or a capacity attribute of the object that
    owns the growing collection (``capacity``, ``_max_entries``, ``cache_size``…).

    Growth up to the bound is a cache filling, and a cache found at its bound is
    evicting: neither is a leak, however late the bound is reached.
    """
    if path.root_kind == "lru_cache":
        try:
            info = path.root_object.cache_info()
        except Exception:  # noqa: BLE001
            info = None
        if info is not None and info.maxsize is not None and info.currsize <= info.maxsize:
            return f"lru_cache bounded at {info.maxsize:,} entries ({_so_far(info.currsize, info.maxsize)})"
    for i, obj in enumerate(path.objects):
        if isinstance(obj, collections.deque) and obj.maxlen is not None and len(obj) <= obj.maxlen:
            return f"deque bounded at maxlen={obj.maxlen:,} ({_so_far(len(obj), obj.maxlen)})"
        maxsize = getattr(type(obj), "maxsize", None)
        if isinstance(maxsize, property):
            try:
                bound, current = obj.maxsize, obj.currsize
            except Exception:  # noqa: BLE001
                continue
            if isinstance(bound, (int, float)) and current <= bound:
                return (
                    f"{type(obj).__name__} bounded at maxsize={bound:,} ({_so_far(current, bound)})"
                )
        found = _capacity_attribute(obj, path.objects[i + 1 :])
        if found:
            return found
    return None


# Attribute names by which an object states the capacity of a collection it owns.
_CAPACITY = re.compile(
    r"^_*(capacity|max_?(size|len|length|entries|items|count)|cache_?size|size_?limit)$",
    re.IGNORECASE,
)


def _capacity_attribute(owner: Any, below: list[Any]) -> str | None:
    """``owner`` (an instance of a class) has an int capacity attribute and the next
    collection on the path holds no more entries than it: the owner enforces it."""
    if type(owner).__module__ == "builtins":
        return None
    try:
        attrs = vars(owner)
    except TypeError:
        return None
    held = next((o for o in below if isinstance(o, (dict, list, set, collections.deque))), None)
    if held is None:
        return None
    for name, value in list(attrs.items()):
        if type(value) is int and value > 0 and _CAPACITY.match(name) and len(held) <= value:
            return (
                f"{type(owner).__name__}.{name} bounds it at {value:,} entries "
                f"({_so_far(len(held), value)})"
            )
    return None


def _so_far(current: int, bound: int | float) -> str:
    return "at its bound, evicting" if current >= bound else f"{current:,} so far"
