"""The C allocator's view of the process, and giving its free memory back to the OS.

glibc keeps memory that Python freed (objects above 512 bytes, buffers, C
extensions' allocations) in its free lists; RSS stays high although little is in
use. ``mallinfo2()`` (glibc 2.33+) says how much is free, ``malloc_trim(0)``
returns the free pages inside the heap to the kernel. ``malloc_trim`` holds the
arena lock while it walks the free lists (tens of milliseconds per hundred MB
fragmented), so it is run on a thread: Python code keeps running, only other
``malloc`` calls on the same arena wait. Elsewhere (musl, macOS) both are absent
and the readers return ``None``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from memlens.heap.glibc import MallInfo2 as _MallInfo2


def _load_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # CDLL (not PyDLL) releases the GIL around each call.
        return ctypes.CDLL(ctypes.util.find_library("c") or None)
    except OSError:
        return None


_libc = _load_libc()
_mallinfo2 = getattr(_libc, "mallinfo2", None)
_malloc_trim = getattr(_libc, "malloc_trim", None)
if _mallinfo2 is not None:
    _mallinfo2.restype = _MallInfo2
    _mallinfo2.argtypes = []
if _malloc_trim is not None:
    _malloc_trim.restype = ctypes.c_int
    _malloc_trim.argtypes = [ctypes.c_size_t]


@dataclass(frozen=True)
class AllocatorStats:
    """Bytes the C allocator has handed out (``in_use``) and holds free (``free``)."""

    in_use: int
    free: int
    arena: int


def allocator_stats() -> AllocatorStats | None:
    """glibc's ``mallinfo2`` figures now, or ``None`` where it is unavailable."""
    if _mallinfo2 is None:
        return None
    info = _mallinfo2()
    return AllocatorStats(
        in_use=int(info.uordblks + info.hblkhd), free=int(info.fordblks), arena=int(info.arena)
    )


def trim_available() -> bool:
    """True when ``malloc_trim`` can be called (glibc)."""
    return _malloc_trim is not None


def malloc_trim(pad: int = 0, timeout: float | None = None) -> tuple[bool, float]:
    """Run ``malloc_trim(pad)`` on a ``memlens-trim`` thread; returns (released, seconds).

    The calling thread waits (without the GIL) up to ``timeout``; ``released`` is
    glibc's answer (``False`` also when trimming is unavailable or timed out).
    """
    if _malloc_trim is None:
        return False, 0.0
    box: list[int] = []
    began = time.perf_counter()
    thread = threading.Thread(
        target=lambda: box.append(_malloc_trim(pad)), name="memlens-trim", daemon=True
    )
    thread.start()
    thread.join(timeout)
    return bool(box and box[0]), time.perf_counter() - began
