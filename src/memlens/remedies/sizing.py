"""How many bytes a value holds: its own size plus what it alone refers to, bounded.

``sys.getsizeof`` counts only the outer object (a list of a thousand strings is
8 KiB to it); a memory bound needs the strings too. :func:`deep_sizeof` follows
references through containers and instances, skipping what is shared by the whole
program (classes, modules, functions, interned singletons), and stops after
``limit`` objects so a value that reaches a large graph costs a bounded time
(the answer is then a lower bound).
"""

from __future__ import annotations

import gc
import sys
import types
from typing import Any

# Shared by the whole program: never charged to one value.
_SHARED = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
    types.FrameType,
)
_ATOMS = (int, float, complex, bool, str, bytes, bytearray, type(None))


def deep_sizeof(value: Any, limit: int = 10_000) -> int:
    """Bytes held by ``value`` and the objects reachable from it (at most ``limit``)."""
    seen: set[int] = set()
    stack = [value]
    total = 0
    while stack and len(seen) < limit:
        obj = stack.pop()
        key = id(obj)
        if key in seen or isinstance(obj, _SHARED) or obj is None:
            continue
        seen.add(key)
        total += sys.getsizeof(obj, 64)
        if isinstance(obj, _ATOMS):
            continue
        stack.extend(gc.get_referents(obj))
    return total
