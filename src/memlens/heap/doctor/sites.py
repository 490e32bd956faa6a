"""Where code lives: user code vs. the standard library and installed packages.

Allocation sites are reported as the innermost frame in the *user's* code, because
a line inside ``json`` or ``logging`` says nothing about which call leaked. Function
names are recovered from the source (tracemalloc frames carry only file and line).
"""

from __future__ import annotations

import ast
import ctypes
import linecache
import os
import sys
import sysconfig
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

from memlens.heap.frames import HOST_FILES

Frame = tuple[str, int]  # (filename, lineno) as tracemalloc stores it

_MEMLENS_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _library_dirs() -> tuple[str, ...]:
    dirs: set[str] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            path = sysconfig.get_paths().get(key)
        except Exception:  # noqa: BLE001 - sysconfig can fail on exotic builds
            path = None
        if path:
            dirs.add(os.path.realpath(path))
    for path in sys.path:
        if path and ("site-packages" in path or "dist-packages" in path):
            dirs.add(os.path.realpath(path))
    return tuple(sorted(dirs, key=len, reverse=True))


class CodeMap:
    """Decides which files are user code; ``user_roots`` always count as user code."""

    def __init__(self, user_roots: Iterable[str] = ()) -> None:
        self.user_roots = tuple(os.path.realpath(r) for r in user_roots if r)
        self.library_dirs = _library_dirs()
        self._cache: dict[str, bool] = {}
        self._own_cache: dict[str, bool] = {}

    def is_user(self, filename: str) -> bool:
        cached = self._cache.get(filename)
        if cached is None:
            cached = self._cache[filename] = self._classify(filename)
        return cached

    def _classify(self, filename: str) -> bool:
        if not filename or filename.startswith("<") or filename in HOST_FILES:
            return False
        path = os.path.realpath(filename)
        if path in HOST_FILES:  # the memlens console script that runs the doctor
            return False
        if path.startswith(_MEMLENS_DIR + os.sep):
            return False
        if any(path.startswith(r + os.sep) or path == r for r in self.user_roots):
            return True
        return not any(path.startswith(d + os.sep) for d in self.library_dirs)

    def library_of(self, filename: str) -> str | None:
        """Top-level package (or stdlib module) name a library file belongs to."""
        path = os.path.realpath(filename)
        for d in self.library_dirs:
            if path.startswith(d + os.sep):
                rel = path[len(d) + 1 :]
                head = rel.split(os.sep, 1)[0]
                if head.endswith(".py"):
                    head = head[:-3]
                return head or None
        return None

    def user_frame_index(self, frames: Sequence[Frame]) -> int | None:
        """Index of the innermost user frame in ``frames`` (innermost first)."""
        for i, (filename, _lineno) in enumerate(frames):
            if self.is_user(filename):
                return i
            # Allocations made by memlens itself (its bookkeeping) are never the
            # user's, even though a user frame called into memlens further out.
            if self.is_memlens(filename):
                return None
        return None

    def is_memlens(self, filename: str) -> bool:
        cached = self._own_cache.get(filename)
        if cached is None:
            cached = os.path.realpath(filename).startswith(_MEMLENS_DIR + os.sep)
            self._own_cache[filename] = cached
        return cached


@lru_cache(maxsize=512)
def _function_spans(filename: str) -> tuple[tuple[int, int, str], ...]:
    lines = linecache.getlines(filename)
    if not lines:
        return ()
    try:
        tree = ast.parse("".join(lines), filename)
    except (SyntaxError, ValueError):
        return ()
    spans: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef):
                    spans.append((child.lineno, child.end_lineno or child.lineno, name))
                    visit(child, name + ".<locals>.")
                else:
                    visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return tuple(spans)


def function_at(filename: str, lineno: int) -> str:
    """Qualified name of the innermost function around ``filename:lineno``."""
    best = ""
    best_size = 1 << 60
    for start, end, name in _function_spans(filename):
        if start <= lineno <= end and end - start < best_size:
            best, best_size = name, end - start
    return best or "<module>"


def source_line(filename: str, lineno: int) -> str:
    return linecache.getline(filename, lineno).strip()


def short_path(filename: str, base: str | None = None) -> str:
    """A path relative to ``base`` (default: the working directory) when inside it."""
    base = base or os.getcwd()
    try:
        rel = os.path.relpath(filename, base)
    except ValueError:
        return filename
    return filename if rel.startswith("..") else rel


def format_frame(frame: Frame) -> str:
    filename, lineno = frame
    return f"{short_path(filename)}:{lineno} in {function_at(filename, lineno)}"


def user_stack(frames: Sequence[Frame], code: CodeMap, limit: int = 8) -> list[str]:
    """The call chain inside user code, innermost first, as ``file:line in fn``."""
    return [format_frame(f) for f in frames if code.is_user(f[0])][:limit]


# -- object → allocation traceback -------------------------------------------------
# tracemalloc.get_object_traceback() misses objects that carry a pre-header (the
# managed __dict__ pointers of ordinary class instances on 3.11), so fall back to
# asking for the trace of the real block start at the possible header offsets.
_GC_HEAD = 16 if sys.maxsize > 2**32 else 8
_OFFSETS = (0, _GC_HEAD, _GC_HEAD + 2 * ctypes.sizeof(ctypes.c_void_p))
_HAVE_GC = 1 << 14
_MANAGED_DICT = 1 << 4 if sys.version_info >= (3, 11) else 0
_raw_traceback = None
try:
    _fn = ctypes.pythonapi._PyTraceMalloc_GetTraceback
    _fn.restype = ctypes.py_object
    _fn.argtypes = [ctypes.c_uint, ctypes.c_size_t]
    _raw_traceback = _fn
except (AttributeError, OSError):  # pragma: no cover - other interpreters
    _raw_traceback = None


# A sampled doctor run answers from the sampler instead (see ``sampled.py``).
_frames_source: Callable[[object], tuple[Frame, ...] | None] | None = None


def use_object_frames(source: Callable[[object], tuple[Frame, ...] | None] | None) -> None:
    """Answer :func:`object_frames` with ``source`` (None: tracemalloc again)."""
    global _frames_source
    _frames_source = source


def object_frames(obj: object) -> tuple[Frame, ...] | None:
    """Allocation traceback of ``obj`` (innermost first), or None if untraced."""
    if _frames_source is not None:
        return _frames_source(obj)
    if _raw_traceback is not None:
        base = id(obj)
        flags = type(obj).__flags__
        if not flags & _HAVE_GC:
            offsets: tuple[int, ...] = (0,)
        elif flags & _MANAGED_DICT:
            offsets = (_OFFSETS[2], _OFFSETS[1])
        else:
            offsets = (_OFFSETS[1], _OFFSETS[2])
        for off in offsets:
            try:
                frames = _raw_traceback(0, base - off)
            except Exception:  # noqa: BLE001 - defensive: never break the diagnosis
                frames = None
            if frames:
                return tuple(frames)
        return None
    tb = tracemalloc.get_object_traceback(obj)
    if tb is None:
        return None
    return tuple((f.filename, f.lineno) for f in reversed(tb))
