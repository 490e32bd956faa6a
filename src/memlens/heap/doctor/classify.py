"""Why a leak happens: its category, from the shape of its retaining path.

The rules look at what the path goes through, most specific first: unreachable
cycles (GC disabled), tracebacks and frames, thread-locals, ``functools.lru_cache``,
registries of closures, subscriptions (bound methods, logging handlers, atexit),
memo dictionaries (read and written under the same key by the same function), and
finally any collection that only grows.
"""

from __future__ import annotations

import ast
import collections
import linecache
import types
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from memlens.heap.doctor.retention import Path
from memlens.heap.doctor.sites import Frame

_CONTAINERS = (dict, list, set, collections.deque)


def _is(obj: object, kinds: type | tuple[type, ...]) -> bool:
    """``isinstance`` by the real type: never asks a proxy (a lazy object whose
    ``__class__`` is a property that imports or configures something) for its class."""
    return issubclass(type(obj), kinds)


@dataclass
class Evidence:
    """What the classifier knows about one leak."""

    path: Path | None
    in_garbage: bool = False
    native: bool = False
    atexit: bool = False
    growing_ids: frozenset[int] = frozenset()
    frames: Sequence[Frame] = ()  # allocation traceback, innermost first
    # The holder belongs to a library's object (a signal, a client, an engine): what
    # it keeps was handed over through the library's registration API.
    library_owned: bool = False


def holder_index(path: Path, growing_ids: frozenset[int]) -> int | None:
    """Index in ``path.objects`` of the collection that grows (or the last one)."""
    last = None
    for i, obj in enumerate(path.objects[:-1] if len(path.objects) > 1 else path.objects):
        if id(obj) in growing_ids:
            return i
        if _is(obj, _CONTAINERS):
            last = i
    return last


def holder_name(path: Path, index: int) -> str:
    """The identifier code uses for the holder: ``_cache`` for ``global _cache``."""
    label = path.hops[index].label
    for prefix in ("global ", "attribute ", "closure cell ", "local ", "default argument "):
        if label.startswith(prefix):
            return label[len(prefix) :].rstrip("=")
    if label.startswith("."):
        return label[1:]
    return ""


def classify(ev: Evidence) -> str:
    """The category name (see ``diagnosis.CATEGORIES``)."""
    if ev.in_garbage:
        return "gc_disabled_cycles"
    if ev.native:
        return "native"
    path = ev.path
    if path is None or not path.found:
        return "listener" if ev.atexit else "other"
    objs = path.objects
    labels = [h.label for h in path.hops]
    if any(_is(o, (types.TracebackType, types.FrameType, BaseException)) for o in objs):
        return "stored_traceback"
    if any(type(o).__name__ == "_local" for o in objs) or "per-thread dicts" in labels:
        return "thread_local"
    if path.root_kind == "context":
        # Only new context variables add entries to a context's mapping.
        return "growing_collection"
    if path.root_kind == "lru_cache":
        return "cached_instances" if _caches_instances(path) else "unbounded_memo"
    idx = holder_index(path, ev.growing_ids)
    after = objs[idx + 1 :] if idx is not None else objs
    after_labels = labels[idx + 1 :] if idx is not None else labels
    if (
        after
        and isinstance(after[0], types.FunctionType)
        and any(lab.startswith("closure cell") for lab in after_labels[1:2])
    ):
        # A callback registry is a listener registry whatever the callback is; a
        # program's own list of closures is a closure registry.
        return "listener" if ev.library_owned else "closure_registry"
    if path.root_kind == "logger" or ".__self__" in labels or _holds_callables(objs, idx):
        return "listener"
    if ev.library_owned and _entries_hold_callables(objs, idx):
        # A library's callback registry (entries are records holding the callback).
        return "listener"
    if idx is not None:
        holder = objs[idx]
        if _is(holder, dict) and (
            _is_memo(holder_name(path, idx), ev.frames) or _decorated_cache(objs, idx)
        ):
            return "unbounded_memo"
        return "growing_collection"
    if objs and is_collection(objs[-1]):
        # No container on the path: the leaked object is itself a collection that
        # is rebuilt or extended bigger on every call (a DataFrame, a table).
        return "growing_collection"
    return "other"


def is_collection(obj: object) -> bool:
    """A sized object that is not an atom (its length counts entries, not chars)."""
    kind = type(obj)
    if issubclass(kind, (str, bytes, bytearray, memoryview, type)):
        return False
    return any("__len__" in vars(k) for k in kind.__mro__ if k is not object)


def _holds_callables(objs: list[Any], idx: int | None) -> bool:
    if idx is None or idx + 1 >= len(objs):
        return False
    item = objs[idx + 1]
    return (
        callable(item)
        and not _is(item, type)
        and (
            _is(item, (types.MethodType, types.FunctionType, types.BuiltinMethodType))
            or type(item).__name__.endswith("Handler")
        )
    )


def _decorated_cache(objs: list[Any], idx: int) -> bool:
    """The holder is reached through a decorated callable (``functools.wraps`` sets
    ``__wrapped__``): a memoizing decorator's cache of the wrapped function's results."""
    for o in objs[:idx]:
        try:
            own = object.__getattribute__(o, "__dict__")
        except Exception:  # noqa: BLE001 - no instance dict (or an odd proxy)
            continue
        if callable(o) and _is(own, dict) and "__wrapped__" in own:
            return True
    return False


def _entries_hold_callables(objs: list[Any], idx: int | None) -> bool:
    """An entry of the holder is, or directly holds, a function or bound method."""
    if idx is None or idx + 1 >= len(objs):
        return False
    entry = objs[idx + 1]
    if _is(entry, (types.FunctionType, types.MethodType)):
        return True
    if _is(entry, (tuple, list)):
        return any(_is(x, (types.FunctionType, types.MethodType)) for x in entry)
    return False


def _caches_instances(path: Path) -> bool:
    """The cache belongs to a method: its keys start with ``self`` (flake8-bugbear
    B019), so every instance it has seen stays alive."""
    wrapped = getattr(path.root_object, "__wrapped__", None)
    code = getattr(wrapped, "__code__", None)
    qualname = getattr(wrapped, "__qualname__", "")
    if code is not None and code.co_argcount and code.co_varnames[0] in ("self", "cls"):
        return "." in qualname.replace(".<locals>.", ":")
    # Not introspectable: look for an instance of a class owning a cached method.
    for obj in path.objects:
        cls = type(obj)
        if cls.__module__ in ("builtins", "functools"):
            continue
        for klass in cls.__mro__:
            for value in vars(klass).values():
                if type(value).__name__ == "_lru_cache_wrapper":
                    return True
    return False


@lru_cache(maxsize=64)
def _functions(filename: str) -> tuple[ast.AST, ...]:
    source = "".join(linecache.getlines(filename))
    if not source:
        return ()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ()
    return tuple(
        n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    )


def _function_node(filename: str, lineno: int) -> ast.AST | None:
    best: ast.AST | None = None
    for node in _functions(filename):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            end = node.end_lineno or node.lineno
            if node.lineno <= lineno <= end and (
                best is None or node.lineno >= getattr(best, "lineno", 0)
            ):
                best = node
    return best


def _is_memo(name: str, frames: Sequence[Frame]) -> bool:
    """A function both looks up and stores into ``name`` by key: a memo."""
    if not name:
        return False
    # The memo's reader/writer is the allocating function or one of its callers.
    for filename, lineno in list(frames)[:4]:
        node = _function_node(filename, lineno)
        if node is not None and _reads_and_writes(node, name):
            return True
    return False


def _base_name(expr: ast.AST) -> str:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return ""


def _reads_and_writes(func: ast.AST, name: str) -> bool:
    """Memoization: the function looks ``name`` up by key, stores into it by key, and
    returns what it stored or found (a get-or-create registry returns nothing)."""
    return _reads_writes(func, name) and _returns_cached(func, name)


def _returns_cached(func: ast.AST, name: str) -> bool:
    stored: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Subscript) and _base_name(t.value) == name for t in node.targets
        ):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    stored.add(t.id)
            if isinstance(node.value, ast.Name):
                stored.add(node.value.id)
    for node in ast.walk(func):
        if isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            if isinstance(value, ast.Subscript) and _base_name(value.value) == name:
                return True
            if (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Attribute)
                and value.func.attr in ("get", "setdefault")
                and _base_name(value.func.value) == name
            ):
                return True
            if isinstance(value, ast.Name) and value.id in stored:
                return True
    return False


def _reads_writes(func: ast.AST, name: str) -> bool:
    reads = writes = False
    for node in ast.walk(func):
        if isinstance(node, ast.Subscript) and _base_name(node.value) == name:
            if isinstance(node.ctx, ast.Store):
                writes = True
            else:
                reads = True
        elif isinstance(node, ast.Compare) and any(
            isinstance(op, (ast.In, ast.NotIn)) for op in node.ops
        ):
            if any(_base_name(c) == name for c in node.comparators):
                reads = True
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and _base_name(node.func.value) == name
        ):
            if node.func.attr == "get":
                reads = True
            elif node.func.attr == "setdefault":
                reads = writes = True
    return reads and writes


WHY: dict[str, str] = {
    "growing_collection": "entries are added on every call and never removed",
    "unbounded_memo": "results are memoized under keys that keep changing, with no size bound",
    "listener": "a callback is registered on every call and never unregistered; it keeps its owner alive",
    "cached_instances": "functools.lru_cache on a method keys on self, so every instance stays cached",
    "stored_traceback": "stored exceptions keep their traceback, and each frame keeps all its locals",
    "closure_registry": "closures are registered and never removed; each keeps the variables it captured",
    "thread_local": "a thread-local keeps per-thread state that is added to and never reset",
    "gc_disabled_cycles": "objects form reference cycles and the program disabled the cyclic GC, so they are never freed",
    "native": "memory is allocated outside Python objects (C extension or ctypes) and not freed",
    "other": "objects allocated here stay alive after every call",
}
