"""Which Python object holds native growth: the collection on the line that grows.

A C extension can keep what the user adds in memory the GC and tracemalloc never
see (protobuf's upb arena behind a repeated field, a C array behind a wrapper). The
line the native growth is charged to names the objects it works on; of those that
live on between calls (module globals and attributes read from them), one whose
length goes up with every call is what keeps the memory. It is found by reading the
line's code and measuring: the step is run a few more times and the lengths compared.
"""

from __future__ import annotations

import ast
import linecache
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from memlens.core.units import format_bytes
from memlens.heap.doctor.checkpoints import type_name
from memlens.heap.doctor.classify import is_collection
from memlens.heap.doctor.diagnosis import Diagnosis, Finding, Hop
from memlens.heap.doctor.sites import CodeMap, Frame

RUNS = 4  # extra step calls the lengths are compared across


@dataclass
class Holder:
    """A long-lived sized object read on the native line, and how it is reached."""

    module: str
    chain: tuple[str, ...]  # ("audit", "values"): global audit → .values
    obj: Any
    before: int = 0
    after: int = 0

    @property
    def root(self) -> str:
        text = f"module {self.module} → global {self.chain[0]}"
        return text + "".join(f" → .{a}" for a in self.chain[1:2])


def candidates(site: Frame) -> list[Holder]:
    """Sized objects the statement at ``site`` reads from its module's globals by
    plain names and attributes (no calls: reading them is what the step does)."""
    filename, lineno = site
    module = _module_of(filename)
    if module is None:
        return []
    stmt, local_names = _statement(filename, lineno)
    if stmt is None:
        return []
    out: list[Holder] = []
    seen: set[int] = set()
    for node in ast.walk(stmt):
        chain = _chain(node)
        if not chain or chain[0] in local_names or chain[0] not in vars(module):
            continue
        try:
            obj: Any = vars(module)[chain[0]]
            for attr in chain[1:]:
                obj = getattr(obj, attr)
        except Exception:  # noqa: BLE001 - an attribute the step sets later
            continue
        if id(obj) in seen or not is_collection(obj):
            continue
        seen.add(id(obj))
        out.append(Holder(module.__name__, chain, obj))
    return out


def find_holder(site: Frame, run: Callable[[int], object], start: int) -> Holder | None:
    """Of :func:`candidates`, the one whose length rose by at least one per call over
    :data:`RUNS` more calls of ``run`` (the longest chain if several: the collection
    itself rather than the object that owns it)."""
    found = candidates(site)
    if not found:
        return None
    for h in found:
        h.before = _len(h.obj)
    for k in range(RUNS):
        run(start + k)
    grown = []
    for h in found:
        h.after = _len(h.obj)
        if h.before >= 0 and h.after - h.before >= RUNS:
            grown.append(h)
    return max(grown, key=lambda h: len(h.chain), default=None)


def apply_holder(diag: Diagnosis, holder: Holder, code: CodeMap) -> None:
    """Report the native finding as the growing collection that keeps its memory."""
    f: Finding | None = next((x for x in diag.findings if x.category == "native"), None)
    if f is None:
        return
    f.category = "growing_collection"
    f.root = holder.root
    f.type_name = type_name(holder.obj)
    f.path = [Hop(label=f"module {holder.module}", type_name="root")]
    obj: Any = None
    for k, name in enumerate(holder.chain):
        obj = holder.obj if k == len(holder.chain) - 1 else None
        label = f"global {name}" if k == 0 else f".{name}"
        detail = f"{type_name(obj)}, {holder.after:,} entries" if obj is not None else ""
        f.path.append(Hop(label=label, type_name=type_name(obj) if obj else "", detail=detail))
    owner = type(holder.obj).__module__ or ""
    mod = sys.modules.get(owner)
    filename = getattr(mod, "__file__", None) or ""
    if filename and not code.is_user(filename):
        f.library = code.library_of(filename) or owner.split(".")[0]
    rate = format_bytes(f.bytes_per_iteration, signed=True)
    f.why = (
        f"entries are added on every call and never removed: {'.'.join(holder.chain)} "
        f"went from {holder.before:,} to {holder.after:,} entries in {RUNS} calls, and its "
        f"type keeps them in native memory ({rate} per call) that Python's allocator "
        "never sees"
    )
    evidence = dict(f.evidence)
    evidence["native_holder"] = ".".join(holder.chain)
    f.evidence = evidence


def _len(obj: Any) -> int:
    try:
        return len(obj)
    except Exception:  # noqa: BLE001 - a length that fails is not a measurement
        return -1


def _module_of(filename: str) -> Any:
    real = os.path.realpath(filename)
    for mod in list(sys.modules.values()):
        path = getattr(mod, "__file__", None)
        if path and os.path.realpath(path) == real:
            return mod
    return None


@lru_cache(maxsize=32)
def _tree(filename: str) -> ast.AST | None:
    try:
        return ast.parse("".join(linecache.getlines(filename)))
    except (SyntaxError, ValueError):
        return None


def _statement(filename: str, lineno: int) -> tuple[ast.stmt | None, frozenset[str]]:
    """The innermost statement spanning ``lineno`` and the names local to its function."""
    tree = _tree(filename)
    if tree is None:
        return None, frozenset()
    best: ast.stmt | None = None
    func: ast.AST | None = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt):
            continue
        end = node.end_lineno or node.lineno
        if not node.lineno <= lineno <= end:
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if func is None or node.lineno >= getattr(func, "lineno", 0):
                func = node
            continue
        if best is None or (end - node.lineno) <= ((best.end_lineno or best.lineno) - best.lineno):
            best = node
    return best, _locals(func)


def _locals(func: ast.AST | None) -> frozenset[str]:
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return frozenset()
    declared: set[str] = set()
    names = {a.arg for a in [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]}
    for node in ast.walk(func):
        if isinstance(node, ast.Global):
            declared.update(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return frozenset(names - declared)


def _chain(node: ast.AST) -> tuple[str, ...] | None:
    """``a.b.c`` read (not stored) as a plain chain of names: ("a", "b", "c")."""
    if not isinstance(getattr(node, "ctx", None), ast.Load):
        return None
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return tuple(reversed(parts))
