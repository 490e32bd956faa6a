"""Which call into a library created a holder the leak goes through.

A finding rooted in a library (a logging handler list, a cachetools cache) names the
public call the user wrote, so the remedy points at the user's line, not the
library's internals.
"""

from __future__ import annotations

import sys
from typing import Any

from memlens.heap.doctor.retention import Path
from memlens.heap.doctor.sites import function_at, source_line


def public_call(lib: str, path: Path, frames: Any, code: Any) -> str:
    """The call into ``lib`` the user wrote that created the holder.

    First a decorator on the user's function held by the root (``@cachetools.cached(
    cache={})``), then the user's own line on the allocation stack that names the
    library, then the outermost public function of the library on that stack.
    """
    holder = path.objects[0] if path.objects else None
    if path.root_kind == "module" and path.hops:
        name = path.hops[0].label.removeprefix("global ")
        module = (
            sys.modules.get(path.root.split(" ")[1]) if path.root.startswith("module ") else None
        )
        text = decorator_text(module, name, lib)
        if text:
            return text
    del holder
    # The user's line that hands the object to the library (``log.addHandler(h)``)
    # or names it (``cachetools.LRUCache(...)``).
    hints = (f"{lib}.", f"{lib}(", "addHandler(") if lib == "logging" else (f"{lib}.", f"{lib}(")
    for filename, lineno in list(frames):
        if code.is_user(filename):
            line = source_line(filename, lineno)
            if any(h in line for h in hints):
                return line.split("  #")[0].strip()
    for filename, lineno in reversed(list(frames)):
        if not code.is_user(filename) and code.library_of(filename) == lib:
            parts = [p for p in function_at(filename, lineno).split(".") if p != "<locals>"]
            parts = [p for p in parts if not p.startswith("_")] or parts[:1]
            return f"{lib}.{'.'.join(parts)}"
    return lib


def decorator_text(module: Any, name: str, lib: str) -> str | None:
    import ast
    import inspect

    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            for deco in node.decorator_list:
                text = ast.get_source_segment(source, deco) or ""
                if text.startswith(lib) or f"{lib}." in text:
                    return "@" + text
    return None
