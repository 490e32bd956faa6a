"""Process-level readers: RSS and the C allocator's own statistics.

Leaks outside Python objects (C extensions, ctypes ``malloc``) never show up in
tracemalloc; glibc's ``mallinfo2`` (2.33+) sees them as bytes in use. Where it is
absent (musl, macOS, old glibc) the doctor degrades to RSS, which is page-granular
and noisier, and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from memlens.heap.doctor.sites import CodeMap, Frame

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _load_mallinfo2() -> Callable[[], _MallInfo2] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    fn.argtypes = []
    return fn


_mallinfo2 = _load_mallinfo2()


def malloc_available() -> bool:
    """True when the C allocator's in-use figure can be read."""
    return _mallinfo2 is not None


def malloc_in_use() -> int:
    """Bytes handed out by malloc (small chunks + mmapped chunks), or -1."""
    if _mallinfo2 is None:
        return -1
    info = _mallinfo2()
    return int(info.uordblks + info.hblkhd)


def rss() -> int:
    """Resident set size in bytes (``/proc/self/statm``; psutil elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        try:
            import psutil

            return int(psutil.Process().memory_info().rss)
        except Exception:  # noqa: BLE001 - no reader at all: report zero
            return 0


def native_reader() -> Callable[[], int]:
    """The best available process-level reader: malloc in use, else RSS."""
    return malloc_in_use if _mallinfo2 is not None else rss


class LineAttributor:
    """Attribute native growth to user source lines with a line tracer.

    For each traced iteration it records the allocator's in-use bytes after every
    user-code line. Memory that is retained raises the *suffix minimum* of that
    sequence (a temporary buffer freed a few lines later does not), so each jump of
    the suffix minimum is charged to the line that ran just before it.
    """

    def __init__(self, code: CodeMap, reader: Callable[[], int]) -> None:
        self.code = code
        self.reader = reader
        self.totals: dict[Frame, int] = {}
        self.stacks: dict[Frame, list[Frame]] = {}
        self._events: list[tuple[Frame, int, list[Frame]]] = []

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event in ("line", "return"):
            key = (frame.f_code.co_filename, frame.f_lineno)
            self._events.append((key, self.reader(), self._stack(frame)))
        return self._local

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call" and self.code.is_user(frame.f_code.co_filename):
            return self._local
        return None

    def _stack(self, frame: FrameType | None) -> list[Frame]:
        out: list[Frame] = []
        while frame is not None and len(out) < 8:
            if self.code.is_user(frame.f_code.co_filename):
                out.append((frame.f_code.co_filename, frame.f_lineno))
            frame = frame.f_back
        return out

    def run(self, call: Callable[[], object]) -> None:
        """Run ``call`` once under the tracer and charge retained growth to lines."""
        self._events = []
        start = self.reader()
        previous = sys.gettrace()
        sys.settrace(self._global)
        try:
            call()
        finally:
            sys.settrace(previous)
        end = self.reader()
        events = self._events
        self._events = []
        if not events:
            return
        values = [v for _, v, _ in events] + [end]
        suffix = values[:]
        for i in range(len(suffix) - 2, -1, -1):
            suffix[i] = min(suffix[i], suffix[i + 1])
        before = start
        # The value recorded at a "line" event is the state *before* that line runs,
        # so growth between event i-1 and i belongs to the line of event i-1.
        prev_key: Frame | None = None
        prev_stack: list[Frame] = []
        for (key, _value, stack), floor in zip(events, suffix):
            jump = floor - before
            if jump > 0 and prev_key is not None:
                self.totals[prev_key] = self.totals.get(prev_key, 0) + jump
                self.stacks.setdefault(prev_key, prev_stack)
            before = max(before, floor)
            prev_key, prev_stack = key, stack
        jump = suffix[-1] - before
        if jump > 0 and prev_key is not None:
            self.totals[prev_key] = self.totals.get(prev_key, 0) + jump
            self.stacks.setdefault(prev_key, prev_stack)

    def best(self) -> tuple[Frame, int, list[Frame]] | None:
        if not self.totals:
            return None
        key = max(self.totals, key=self.totals.__getitem__)
        return key, self.totals[key], self.stacks.get(key, [key])
