"""Shortest retaining path from a leaked object to a *named* root.

A breadth-first walk over the reverse graph (:mod:`graph`) from the object towards
its referrers stops at the first node that names a root: a module's globals, a
class's attributes, a live frame, a ``functools.lru_cache`` wrapper, or a logging
logger. The hops are labelled the way a person would write them (``global _cache``,
``['user-42']``, ``.handlers``, ``closure cell seen``, ``default argument memo=``).
"""

from __future__ import annotations

import gc
import inspect
import os
import sys
import threading
import types
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from memlens.heap.doctor.checkpoints import type_name
from memlens.heap.doctor.diagnosis import Hop
from memlens.heap.doctor.graph import ReverseGraph

MAX_VISITED = 200_000
_MEMLENS_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _is(obj: object, kinds: type | tuple[type, ...]) -> bool:
    """``isinstance`` by the real type: never asks a proxy (a lazy object whose
    ``__class__`` is a property that imports or configures something) for its class."""
    return issubclass(type(obj), kinds)


def _is_memlens_code(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_MEMLENS_DIR + os.sep)


@dataclass
class Path:
    """A retaining path, root first; ``objects[i]`` is reached by ``hops[i]``."""

    root: str
    root_kind: str  # module | class | frame | lru_cache | logger | context | none
    objects: list[Any] = field(default_factory=list)
    hops: list[Hop] = field(default_factory=list)
    root_module: str | None = None
    root_object: Any = None

    @property
    def found(self) -> bool:
        return self.root_kind != "none"


class Roots:
    """Index of the named roots of the current heap."""

    def __init__(
        self,
        graph: ReverseGraph,
        ignore_frames: set[int],
        contexts: dict[int, str] | None = None,
    ) -> None:
        # The contextvars mapping of a thread (id of its HAMT -> thread name): the
        # thread state holds it, which the GC does not see.
        self.contexts: dict[int, str] = dict(contexts or {})
        self.module_dicts: dict[int, str] = {}
        for name, mod in sys.modules.copy().items():  # a thread may import meanwhile
            d = getattr(mod, "__dict__", None)
            if isinstance(d, dict) and name != "__mp_main__":
                self.module_dicts.setdefault(id(d), name)
        self.class_dicts: dict[int, type] = {}
        for obj in graph.classes():
            if not _named_class(obj):
                # A class no module names is only as alive as what holds it: the
                # subclass unittest.mock makes for every mock, whose attributes point
                # back at the mock, is kept by the mock, not the other way round.
                continue
            try:
                real = gc.get_referents(obj.__dict__)
            except Exception:  # noqa: BLE001 - odd metaclasses
                continue
            if real and isinstance(real[0], dict):
                self.class_dicts[id(real[0])] = obj
        self.live_frames: dict[int, str] = {}
        names = {t.ident: t.name for t in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            if names.get(ident) == "memlens-doctor":
                continue  # the doctor's own worker thread
            f: types.FrameType | None = frame
            while f is not None:
                if id(f) not in ignore_frames and not _is_memlens_code(f.f_code.co_filename):
                    self.live_frames[id(f)] = names.get(ident, str(ident))
                    # A running frame does not report its locals to the GC.
                    try:
                        local_values = list(f.f_locals.values())
                    except Exception:  # noqa: BLE001
                        local_values = []
                    for value in local_values:
                        graph.add_edge(f, value)
                f = f.f_back
        logging = sys.modules.get("logging")
        self.logger_types: tuple[type, ...] = (
            (logging.Logger, logging.PlaceHolder) if logging else ()
        )

    def kind(self, oid: int, obj: Any) -> str | None:
        if oid in self.module_dicts:
            return "module"
        if oid in self.class_dicts:
            return "class"
        if oid in self.live_frames:
            return "frame"
        if type(obj).__name__ == "_lru_cache_wrapper":
            return "lru_cache"
        if self.logger_types and _is(obj, self.logger_types):
            return "logger"
        if oid in self.contexts:
            return "context"
        return None


def _named_class(cls: type) -> bool:
    """``cls`` is what its module's namespace names it (``module.Outer.Inner``)."""
    module = sys.modules.get(getattr(cls, "__module__", None) or "")
    if module is None:
        return False
    qualname = getattr(cls, "__qualname__", "") or ""
    if "<locals>" in qualname:
        return False
    obj: Any = module
    try:
        for part in qualname.split("."):
            obj = inspect.getattr_static(obj, part)
    except AttributeError:
        return False
    return obj is cls


def find_path(target: Any, graph: ReverseGraph, roots: Roots) -> Path:
    """Shortest path from a named root to ``target`` (``Path.found`` False if none).

    Breadth-first, one level at a time: every node of a level is checked for a root
    (in queue order) before the level's referrers are asked for in one
    :meth:`ReverseGraph.prefetch` (one heap pass on a lazy graph).
    """
    start = id(target)
    graph.add(target)
    towards: dict[int, int] = {start: -1}  # referrer -> the child it holds
    level = [start]
    while level:
        for oid in level:
            obj = graph.get(oid)
            kind = roots.kind(oid, obj) if oid != start else None
            if kind == "logger" and not _through_handlers(obj, oid, towards, graph):
                kind = None  # a logger is a root only for what its handler list holds
            if kind is not None:
                chain = [oid]
                while towards[chain[-1]] != -1:
                    chain.append(towards[chain[-1]])
                return _build(kind, [graph.get(i) for i in chain], roots)
        if len(towards) >= MAX_VISITED:
            break
        graph.prefetch(level)
        fresh: list[int] = []
        for oid in level:
            for ref in graph.referrers(oid):
                if ref not in towards and ref not in graph.ignore:
                    towards[ref] = oid
                    fresh.append(ref)
        level = fresh
    return Path(root="", root_kind="none", objects=[target])


# -- labels ------------------------------------------------------------------------
def _short_repr(value: Any, limit: int = 40) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - user reprs may raise
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(obj: Any) -> str:
    name = type_name(obj)
    try:
        if _is(obj, (dict, list, set, tuple, frozenset, deque)):
            return f"{name}, {len(obj):,} entries"
    except Exception:  # noqa: BLE001
        pass
    return name


def hop_label(holder: Any, child: Any) -> str:
    """How ``holder`` refers to ``child``, in words."""
    try:
        return _hop_label(holder, child)
    except Exception:  # noqa: BLE001 - labelling must never break a diagnosis
        return "→"


def _hop_label(holder: Any, child: Any) -> str:
    if _is(holder, dict):
        for k, v in holder.items():
            if v is child:
                if isinstance(k, weakref.ref):
                    # threading.local keeps one dict per thread, keyed by a weak
                    # reference to that thread's marker object.
                    return "[one thread's dict]"
                return f"[{_short_repr(k)}]"
            if k is child:
                return "key"
        return "entry"
    if _is(holder, (list, tuple, deque)):
        for i, v in enumerate(holder):
            if v is child:
                return f"[{i}]"
        return "item"
    if _is(holder, (set, frozenset)):
        return "item"
    if _is(holder, types.CellType):
        return "cell contents"
    if _is(holder, types.FunctionType):
        code = holder.__code__
        for i, cell in enumerate(holder.__closure__ or ()):
            if cell is child:
                return f"closure cell {code.co_freevars[i]}"
            if _cell_value(cell) is child:
                return f"closure cell {code.co_freevars[i]}"
        if holder.__closure__ is child:
            return "__closure__"
        if holder.__defaults__ is child:
            return "defaults"
        if holder.__kwdefaults__ is child:
            return "kwdefaults"
        return "→"
    if _is(holder, types.MethodType):
        return ".__self__" if holder.__self__ is child else ".__func__"
    if _is(holder, types.FrameType):
        for k, v in holder.f_locals.items():
            if v is child:
                return f"local {k}"
        return "frame"
    if _is(holder, types.TracebackType):
        return ".tb_frame" if holder.tb_frame is child else ".tb_next"
    if _is(holder, BaseException):
        if holder.__traceback__ is child:
            return ".__traceback__"
        if holder.__context__ is child:
            return ".__context__"
        if holder.__cause__ is child:
            return ".__cause__"
    if type(holder).__name__ == "_lru_cache_wrapper":
        return "cache"
    if type(holder).__name__ == "_local":
        return "per-thread dicts"
    attrs = getattr(holder, "__dict__", None)
    if isinstance(attrs, dict):
        if attrs is child:
            return ".__dict__"
        for k, v in attrs.items():
            if v is child:
                return f".{k}"
    for slot in getattr(type(holder), "__slots__", ()) or ():
        if getattr(holder, slot, None) is child:
            return f".{slot}"
    return "→"


def _cell_value(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:
        return None


def _build(kind: str, chain: list[Any], roots: Roots) -> Path:
    """Label a chain (root first) and name the root."""
    root_obj = chain[0]
    hops: list[Hop] = []
    objects: list[Any] = []
    i = 1
    while i < len(chain):
        holder, child = chain[i - 1], chain[i]
        label = hop_label(holder, child)
        # Collapse the plumbing people never think about: an instance's __dict__, a
        # function's defaults tuple, a closure cell.
        if label == ".__dict__" and i + 1 < len(chain):
            label = hop_label(child, chain[i + 1]).replace("[", ".", 1).rstrip("]")
            label = label.replace("'", "")
            i += 1
            child = chain[i]
        elif label == "defaults" and i + 1 < len(chain) and _is(holder, types.FunctionType):
            idx = _index_in(child, chain[i + 1])
            names = _default_names(holder)
            label = (
                f"default argument {names[idx]}=" if idx is not None and idx < len(names) else label
            )
            i += 1
            child = chain[i]
        elif label.startswith("closure cell") and i + 1 < len(chain) and _is(child, types.CellType):
            i += 1
            child = chain[i]
        elif label == "__closure__" and i + 2 < len(chain) and _is(holder, types.FunctionType):
            idx = _index_in(child, chain[i + 1])
            freevars = holder.__code__.co_freevars
            label = (
                f"closure cell {freevars[idx]}"
                if idx is not None and idx < len(freevars)
                else "closure"
            )
            i += 2
            child = chain[i]
        if hops and hops[-1].label == "[one thread's dict]" and label.startswith("['"):
            label = "." + label[2:-2]  # the thread's dict holds the local's attributes
        hops.append(Hop(label=label, type_name=type_name(child), detail=_describe(child)))
        objects.append(child)
        i += 1
    if hops and kind in ("module", "class") and hops[0].label.startswith("["):
        key = hops[0].label[1:-1].strip("'\"")
        hops[0].label = ("global " if kind == "module" else "attribute ") + key
    root, module = _root_name(kind, root_obj, roots, hops, objects)
    return Path(
        root=root,
        root_kind=kind,
        objects=objects,
        hops=hops,
        root_module=module,
        root_object=root_obj,
    )


def _through_handlers(logger: Any, oid: int, towards: dict[int, int], graph: ReverseGraph) -> bool:
    """The path leaves ``logger`` through its ``handlers`` list (logger → __dict__ → list)."""
    handlers = getattr(logger, "handlers", None)
    child = towards.get(oid, -1)
    for _ in range(2):
        if child == -1:
            return False
        if graph.get(child) is handlers:
            return True
        child = towards.get(child, -1)
    return False


def _index_in(seq: Any, item: Any) -> int | None:
    for i, v in enumerate(seq):
        if v is item:
            return i
    return None


def _default_names(fn: types.FunctionType) -> list[str]:
    code = fn.__code__
    positional = code.co_varnames[: code.co_argcount]
    n = len(fn.__defaults__ or ())
    return list(positional[len(positional) - n :])


def _root_name(
    kind: str, root_obj: Any, roots: Roots, hops: list[Hop], objects: list[Any]
) -> tuple[str, str | None]:
    first = hops[0].label if hops else ""
    for prefix in ("global ", "attribute "):
        first = first[len(prefix) :] if first.startswith(prefix) else first
    if kind == "module":
        module = roots.module_dicts[id(root_obj)]
        name = first.replace("[", "").replace("]", "").strip("'\"")
        text = f"module {module} → global {name}"
        module_of = module
    elif kind == "class":
        cls = roots.class_dicts[id(root_obj)]
        name = first.replace("[", "").replace("]", "").strip("'\"")
        text = f"class {cls.__module__}.{cls.__qualname__} → attribute {name}"
        module_of = cls.__module__
    elif kind == "frame":
        code = root_obj.f_code
        thread = roots.live_frames.get(id(root_obj), "?")
        text = f"live frame {code.co_name} (thread {thread}) → {first}"
        return text, root_obj.f_globals.get("__name__")
    elif kind == "lru_cache":
        qual = getattr(root_obj, "__qualname__", "?")
        lru_module: str | None = getattr(root_obj, "__module__", None)
        return f"functools.lru_cache of {lru_module}.{qual}", lru_module
    elif kind == "logger":
        return f"logging handler list of logger {getattr(root_obj, 'name', '?')!r}", "logging"
    elif kind == "context":
        thread = roots.contexts.get(id(root_obj), "?")
        return f"the contextvars context of thread {thread}", "contextvars"
    else:  # pragma: no cover
        return "unknown", None
    # A singleton's attribute, a named function's closure cell or default argument
    # is part of the root's name.
    if objects and len(hops) > 1:
        head = objects[0]
        nxt = hops[1].label
        if _is(head, types.FunctionType) or (
            not _is(head, (dict, list, set, tuple, deque, type, types.ModuleType))
            and (nxt.startswith(".") and nxt not in (".__self__", ".__func__"))
        ):
            text += f" → {nxt}"
            fn_module = getattr(head, "__module__", None)
            if _is(head, types.FunctionType) and fn_module:
                module_of = fn_module
            elif not _is(head, types.FunctionType):
                module_of = type(head).__module__
    return text, module_of
