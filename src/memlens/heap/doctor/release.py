"""The call that lets go of what a registration holds, read from the user's code.

A listener leak is fixed with the registering API's own counterpart: blinker's and
Django's ``signal.disconnect``, SQLAlchemy's ``event.remove``, ``atexit.unregister``,
``logger.removeHandler``, ``future.remove_done_callback``, ``list.remove``. Nothing
here knows a library: the functions on the leak's user stack are parsed, each
method call whose name is a registering verb is paired with its counterpart
(``connect``/``disconnect``, ``add_x``/``remove_x``, ``addX``/``removeX``, …), and
the counterpart must exist *at run time* on the object the call was made on.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import re
import sys
from collections.abc import Iterable
from typing import Any

from memlens.heap.doctor.sites import Frame

# Registering verb -> the verbs that undo it, most specific first.
_UNDO: dict[str, tuple[str, ...]] = {
    "connect": ("disconnect",),
    "register": ("unregister",),
    "subscribe": ("unsubscribe",),
    "listen": ("remove", "unlisten"),
    "listens_for": ("remove",),
    "attach": ("detach",),
    "bind": ("unbind",),
    "on": ("off",),
    "add": ("remove", "discard", "delete"),
    "append": ("remove",),
    "watch": ("unwatch",),
    "install": ("uninstall",),
}
_CAMEL = re.compile(r"^(add|register|attach|subscribe|connect)([A-Z_]\w*)$")


def counterparts(verb: str) -> list[str]:
    """Names that undo ``verb`` (``add_done_callback`` -> ``remove_done_callback``)."""
    if verb in _UNDO:
        return list(_UNDO[verb])
    m = _CAMEL.match(verb)
    if m:
        head, rest = m.groups()
        return [undo + rest for undo in _UNDO.get(head, ())]
    return []


def release_call(frames: Iterable[Frame], is_user: Any, module_globals: Any = None) -> str | None:
    """``receiver.undo(args)`` for the first registration in the leak's user functions.

    ``frames`` is the allocation stack (innermost first); ``is_user(filename)`` tells
    user code apart. The receiver of a call is resolved in the function's module
    (names and attribute chains only: nothing is called); a receiver that cannot be
    resolved is accepted only when the undo is a ``list`` method on a list.
    """
    seen: set[tuple[str, int]] = set()
    for filename, lineno in frames:
        if not is_user(filename):
            continue
        node = _function_at(filename, lineno)
        if node is None or (filename, node.lineno) in seen:
            continue
        seen.add((filename, node.lineno))
        namespace = _module_namespace(filename) if module_globals is None else module_globals
        for call in _calls(node):
            text = _undo_text(call, namespace)
            if text:
                return text
    return None


def _calls(func: ast.AST) -> list[ast.Call]:
    calls = [n for n in ast.walk(func) if isinstance(n, ast.Call)]
    calls.sort(key=lambda c: (c.lineno, c.col_offset))
    return calls


def _undo_text(call: ast.Call, namespace: dict[str, Any]) -> str | None:
    func = call.func
    if not isinstance(func, ast.Attribute):
        return None
    undo_names = counterparts(func.attr)
    if not undo_names:
        return None
    receiver_src = ast.unparse(func.value)
    receiver = _resolve(func.value, namespace)
    for undo in undo_names:
        if receiver is _UNRESOLVED:
            if undo != "remove" or func.attr != "append":
                continue
        elif not callable(_static(receiver, undo)):
            continue
        args = [ast.unparse(a) for a in call.args]
        return f"{receiver_src}.{undo}({', '.join(args)})"
    return None


_UNRESOLVED = object()


def _resolve(expr: ast.AST, namespace: dict[str, Any]) -> Any:
    """The value of a ``name`` or ``name.attr.attr`` expression, without calling anything."""
    if isinstance(expr, ast.Name):
        if expr.id in namespace:
            return namespace[expr.id]
        builtins = namespace.get("__builtins__")
        if isinstance(builtins, dict) and expr.id in builtins:
            return builtins[expr.id]
        return _UNRESOLVED
    if isinstance(expr, ast.Attribute):
        base = _resolve(expr.value, namespace)
        if base is _UNRESOLVED:
            return _UNRESOLVED
        try:
            # Static lookup: no properties, no __getattr__ side effects.
            return inspect.getattr_static(base, expr.attr)
        except AttributeError:
            return _UNRESOLVED
    return _UNRESOLVED


def _module_namespace(filename: str) -> dict[str, Any]:
    for module in list(sys.modules.values()):
        if getattr(module, "__file__", None) == filename:
            return vars(module)
    return {}


def _function_at(filename: str, lineno: int) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    source = "".join(linecache.getlines(filename))
    if not source:
        return None
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    best: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            end = node.end_lineno or node.lineno
            if node.lineno <= lineno <= end and (best is None or node.lineno >= best.lineno):
                best = node
    return best


def _static(obj: Any, name: str) -> Any:
    try:
        return inspect.getattr_static(obj, name)
    except AttributeError:
        return None
