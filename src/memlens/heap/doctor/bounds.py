"""Is a growing holder bounded? A cache that stops by itself is not a leak.

Two sources, both read from the code that owns the holder: a library's module
global that its own code evicts from once it reaches a size (``if len(_cache) >=
_MAXCACHE: del _cache[...]``, as re does), and bounds written on the retaining path
(``lru_cache(maxsize=…)``, ``deque(maxlen=…)``, cachetools-style ``maxsize``, a
capacity attribute).
"""

from __future__ import annotations

import ast
import collections
import inspect
import re
import sys
import textwrap
from typing import Any

from memlens.heap.doctor.retention import Path


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
        return module_bound(mod, name, path.objects[0] if path.objects else None)
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
        found = capacity_attribute(obj, path.objects[i + 1 :])
        if found:
            return found
    return None


# Attribute names by which an object states the capacity of a collection it owns.
_CAPACITY = re.compile(
    r"^_*(capacity|max_?(size|len|length|entries|items|count)|cache_?size|size_?limit)$",
    re.IGNORECASE,
)


def capacity_attribute(owner: Any, below: list[Any]) -> str | None:
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
    held_name = next((k for k, v in attrs.items() if v is held), None)
    for name, value in list(attrs.items()):
        if (
            type(value) is int
            and value > 0
            and _CAPACITY.match(name)
            and len(held) <= value
            and _enforces(type(owner), held_name, name)
        ):
            return (
                f"{type(owner).__name__}.{name} bounds it at {value:,} entries "
                f"({_so_far(len(held), value)})"
            )
    return None


def _enforces(cls: type, held: str | None, capacity: str) -> bool:
    """The class's own code evicts from ``self.<held>`` once its length reaches
    ``self.<capacity>``: a branch tested on ``len(self.held)`` against
    ``self.capacity`` deletes, pops or clears it, itself or through a method of the
    class it calls (``if len(self._cache) >= self._max_entries: self._cull()``).

    A capacity that only decides when to hand records on (logging's MemoryHandler
    without a target flushes nothing away) is no bound. A class whose code cannot
    be read (a C type) is taken at its word.
    """
    methods: dict[str, ast.AST] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__ == "builtins":
            continue
        try:
            tree = ast.parse(_dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                methods[node.name] = node
    if not methods:
        return True
    if held is None:
        return False
    for func in methods.values():
        for node in ast.walk(func):
            if not isinstance(node, ast.If) or not _tests_len_against(node.test, held, capacity):
                continue
            if _evicts_self(node.body, held) or any(
                name in methods and _evicts_self([methods[name]], held)
                for name in _self_calls(node.body)
            ):
                return True
    return False


def _dedent(source: str) -> str:
    return textwrap.dedent(source)


def _self_attr(expr: ast.AST, name: str) -> bool:
    return (
        isinstance(expr, ast.Attribute)
        and expr.attr == name
        and isinstance(expr.value, ast.Name)
        and expr.value.id == "self"
    )


def _tests_len_against(test: ast.AST, held: str, capacity: str) -> bool:
    for node in ast.walk(test):
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            sides = (node.left, node.comparators[0])
            has_len = any(
                isinstance(x, ast.Call)
                and isinstance(x.func, ast.Name)
                and x.func.id == "len"
                and len(x.args) == 1
                and _self_attr(x.args[0], held)
                for x in sides
            )
            if has_len and any(_self_attr(x, capacity) for x in sides):
                return True
    return False


def _evicts_self(body: list[Any], held: str) -> bool:
    for node in (n for stmt in body for n in ast.walk(stmt)):
        if isinstance(node, ast.Delete) and any(
            isinstance(t, ast.Subscript) and _self_attr(t.value, held) for t in node.targets
        ):
            return True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _EVICT
            and _self_attr(node.func.value, held)
        ):
            return True
        if isinstance(node, ast.Assign) and any(_self_attr(t, held) for t in node.targets):
            return True
    return False


def _self_calls(body: list[ast.stmt]) -> set[str]:
    return {
        node.func.attr
        for stmt in body
        for node in ast.walk(stmt)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "self"
    }


def _so_far(current: int, bound: int | float) -> str:
    return "at its bound, evicting" if current >= bound else f"{current:,} so far"


_EVICT = frozenset({"pop", "popitem", "clear", "popleft"})


def module_bound(module: Any, name: str, holder: Any) -> str | None:
    """The module's own code evicts from its global ``name`` once it reaches a size.

    Read from the module's source: a test ``len(name) > / >= bound`` whose branch
    deletes from, pops from or clears ``name``. A bound that names a module-level
    int is checked against the holder's current size. A registry that only some
    maintenance call empties (``linecache.clearcache()``) has no such test.
    """
    try:
        source = inspect.getsource(module)
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if not isinstance(node, ast.If):
            continue
        limit = _len_test(node.test, name)
        if limit is not None and _evicts(node.body, name):
            text = _bound_text(module, name, limit, holder, source, node)
            if text:
                return text
    return None


def _len_test(test: ast.AST, name: str) -> ast.AST | None:
    """The bound ``X`` of a test ``len(name) >= X`` (or ``X <= len(name)``, ``>``)."""
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        return None
    left, op, right = test.left, test.ops[0], test.comparators[0]
    if isinstance(op, (ast.Gt, ast.GtE)) and _is_len_of(left, name):
        return right
    if isinstance(op, (ast.Lt, ast.LtE)) and _is_len_of(right, name):
        return left
    return None


def _is_len_of(expr: ast.AST, name: str) -> bool:
    return (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Name)
        and expr.func.id == "len"
        and len(expr.args) == 1
        and isinstance(expr.args[0], ast.Name)
        and expr.args[0].id == name
    )


def _evicts(body: list[ast.stmt], name: str) -> bool:
    for node in (n for stmt in body for n in ast.walk(stmt)):
        if isinstance(node, ast.Delete) and any(
            isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id == name
            for t in node.targets
        ):
            return True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _EVICT
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == name
        ):
            return True
    return False


def _bound_text(
    module: Any, name: str, limit: ast.AST, holder: Any, source: str, node: ast.If
) -> str | None:
    value: object = None
    if isinstance(limit, ast.Constant):
        value = limit.value
    elif isinstance(limit, ast.Name):
        value = getattr(module, limit.id, None)
    size = _size(holder)
    if isinstance(value, int) and size is not None and size > value:
        return None  # past the stated bound: the test does not hold it
    test = ast.get_source_segment(source, node.test) or "len(...)"
    where = f"{module.__name__}.{name}"
    at = f" ({_so_far(size, value)})" if isinstance(value, int) and size is not None else ""
    return f"{where} is evicted from by its own code once `{test}`{at}"


def _size(obj: Any) -> int | None:
    try:
        return len(obj)
    except Exception:  # noqa: BLE001 - not sized
        return None
