"""Process-level readers: RSS and the C allocator's own statistics.

Leaks outside Python objects (C extensions, ctypes ``malloc``) never show up in
tracemalloc; glibc's ``mallinfo2`` (2.33+) sees them as bytes in use. Where it is
absent (musl, macOS, old glibc) the doctor degrades to RSS, which is page-granular
and noisier, and says so.
"""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from memlens.heap.doctor.sites import CodeMap, Frame
from memlens.heap.glibc import MallInfo2 as _MallInfo2

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


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

    At every line and return event of user code it reads two figures: ``raw``, the
    allocator's bytes in use, and ``untraced``, the same minus what tracemalloc
    explains (Python objects). The change up to the next event is charged to the
    line that was running: the event's own line or, after a return, the caller's
    line (a temporary argument freed on return belongs to the line that made it).
    A line's score is the smallest of three sums, each of which clears a different
    look-alike:

    - raw changes: Python objects freed on a line do not move it (pymalloc keeps
      its arenas), so freeing temporaries scores nothing;
    - untraced changes: a big Python temporary handed to a C call cancels out;
    - rises of the untraced *suffix minimum*: memory that stays raises the floor, a
      C buffer freed a few lines later does not.
    """

    # Events one run can record; a longer run charges nothing past this point.
    CAPACITY = 8192

    def __init__(self, code: CodeMap, reader: Callable[[], tuple[int, int]]) -> None:
        self.code = code
        self.reader = reader
        self.raw: dict[Frame, int] = {}
        self.untraced: dict[Frame, int] = {}
        self.floor: dict[Frame, int] = {}
        self.stacks: dict[Frame, list[Frame]] = {}
        # Each event is stored in preallocated arrays: the figures as machine
        # integers, the code object by reference. Recording then keeps nothing new
        # alive, so tracemalloc's tables do not grow by an entry per event, which
        # used to charge ~200 B per event to the busiest line (a loop of 30 lines
        # outweighed a 256 B native leak).
        n = self.CAPACITY
        self._raw = array.array("q", bytes(8 * n))
        self._untraced = array.array("q", bytes(8 * n))
        self._lines = array.array("q", bytes(8 * n))
        self._codes: list[Any] = [None] * n
        self._seen: dict[Any, set[int]] = {}  # code -> lines whose stack is known
        self._n = 0

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self._record(frame)
        elif event == "return":
            caller = frame.f_back
            if caller is not None and self.code.is_user(caller.f_code.co_filename):
                self._record(caller)
            else:
                self._record(frame)
        return self._local

    def _record(self, frame: FrameType) -> None:
        n = self._n
        if n >= self.CAPACITY:
            return
        code = frame.f_code
        line = frame.f_lineno
        seen = self._seen.get(code)
        if seen is None or line not in seen:
            # First time at this line (the untraced warm-up run sees them all).
            self._seen.setdefault(code, set()).add(line)
            self.stacks.setdefault((code.co_filename, line), self._stack(frame))
        raw, untraced = self.reader()
        self._raw[n] = raw
        self._untraced[n] = untraced
        self._lines[n] = line
        self._codes[n] = code
        self._n = n + 1

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

    def run(self, call: Callable[[], object], record: bool = True) -> None:
        """Run ``call`` once under the tracer and charge growth to lines.

        ``record=False`` runs it without charging anything (a warm-up of the tracer).
        """
        self._n = 0
        previous = sys.gettrace()
        sys.settrace(self._global)
        try:
            call()
        finally:
            sys.settrace(previous)
        end = self.reader()
        count = self._n
        if not count or not record:
            return
        raws = list(self._raw[:count]) + [end[0]]
        floor = list(self._untraced[:count]) + [end[1]]
        untraced = floor[:]
        for i in range(len(floor) - 2, -1, -1):
            floor[i] = min(floor[i], floor[i + 1])
        for i in range(count):
            key = (self._codes[i].co_filename, self._lines[i])
            self.raw[key] = self.raw.get(key, 0) + raws[i + 1] - raws[i]
            self.untraced[key] = self.untraced.get(key, 0) + untraced[i + 1] - untraced[i]
            rise = floor[i + 1] - floor[i]
            if rise > 0:
                self.floor[key] = self.floor.get(key, 0) + rise

    def score(self, key: Frame) -> int:
        return min(self.raw.get(key, 0), self.untraced.get(key, 0), self.floor.get(key, 0))

    def best(self) -> tuple[Frame, int, list[Frame]] | None:
        scores = {k: self.score(k) for k in self.raw}
        scores = {k: v for k, v in scores.items() if v > 0}
        if not scores:
            return None
        top = max(scores.values())
        # A caller's line can be charged the same bytes as the callee's line that
        # made them (allocator timing); of the lines close to the top score, the
        # innermost one (the deepest user stack) is the allocation site.
        close = [k for k, v in scores.items() if v >= 0.5 * top]
        key = max(close, key=lambda k: (len(self.stacks.get(k, ())), scores[k]))
        return key, scores[key], self.stacks.get(key, [key])
