"""Where the resident memory is: the Python heap, the C allocator, and the rest.

A process's RSS is split into three parts, each read from its own source:

- **the Python heap**: pymalloc's arenas (``sys._debugmallocstats``): bytes in live
  small blocks, and bytes free inside arenas that cannot be returned while any block
  of the arena lives; plus tracemalloc's traced total when tracing is on;
- **the C allocator** (glibc ``mallinfo2``): bytes in use, bytes free but still held
  by the process, and an estimate of what ``malloc_trim(0)`` would give back (whole
  pages inside free chunks, from ``malloc_info``'s free-chunk histogram);
- **the rest**: file-backed pages (code, mapped files) from ``/proc/self/smaps_rollup``,
  and other anonymous memory (thread stacks, direct ``mmap`` by extensions).

The :func:`verdict` of a reading (or of two readings, for growth) tells a growing heap
from an allocator that is fragmented or merely holding free memory. Reading costs a few
milliseconds (``mallinfo2`` and ``malloc_info`` walk the allocator's bins, pymalloc's
statistics walk its arenas); it never runs on a hot path unless asked.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from memlens.heap.glibc import MallInfo2 as _MallInfo2

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MIB = 1024 * 1024

# Verdicts, worst first.
GROWING = "growing heap"
FRAGMENTED = "fragmented allocator"
HOLDING = "allocator holding free memory"
COMPACT = "compact"

# A part of the heap counts as "much free memory" above both bounds.
FREE_MIN_BYTES = 16 * MIB
FREE_MIN_SHARE = 0.25
# Free memory is merely *held* when a trim would give back nearly all of it (one
# freed region); when a quarter or more would stay (free chunks interleaved with
# live ones, as after freeing 7 of every 8 blocks), the allocator is fragmented.
HOLDING_SHARE = 0.75


@dataclass
class PymallocStats:
    """pymalloc's arenas: where Python's small objects (<= 512 B) live."""

    arenas: int = 0
    arena_bytes: int = 0  # all arenas together
    in_use: int = 0  # bytes in allocated blocks
    free: int = 0  # available blocks + unused pools: held by live arenas
    overhead: int = 0  # pool headers, quantization, arena alignment


@dataclass
class MallocStats:
    """glibc's view of the C heap (``mallinfo2``) and what a trim would return."""

    heap: int = 0  # bytes obtained with brk/heaps for small chunks (``arena``)
    mmapped: int = 0  # bytes in chunks served by their own mmap (``hblkhd``)
    in_use: int = 0  # ``uordblks + hblkhd``
    free: int = 0  # ``fordblks``: free chunks the process still holds
    top_pad: int = 0  # ``keepcost``: releasable at the top of the main heap
    trimmable: int = 0  # estimate of what malloc_trim(0) would return


@dataclass
class Breakdown:
    """One reading of where the resident memory is (all figures in bytes)."""

    rss: int = 0
    python: PymallocStats | None = None
    traced: int | None = None  # tracemalloc's total when tracing
    malloc: MallocStats | None = None
    file_backed: int | None = None
    other: int = 0  # RSS not explained by the parts above (stacks, direct mmap, ...)
    verdict: str = COMPACT
    reason: str = ""
    taken_at: float = field(default_factory=time.time)

    @property
    def free_held(self) -> int:
        """Free memory the process holds in both allocators."""
        return (self.python.free if self.python else 0) + (self.malloc.free if self.malloc else 0)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["free_held"] = self.free_held
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Breakdown:
        python = data.get("python")
        malloc = data.get("malloc")
        return cls(
            rss=int(data.get("rss", 0)),
            python=PymallocStats(**python) if isinstance(python, dict) else None,
            traced=data.get("traced"),
            malloc=MallocStats(**malloc) if isinstance(malloc, dict) else None,
            file_backed=data.get("file_backed"),
            other=int(data.get("other", 0)),
            verdict=str(data.get("verdict", COMPACT)),
            reason=str(data.get("reason", "")),
            taken_at=float(data.get("taken_at", 0.0)),
        )


# -- glibc -----------------------------------------------------------------------------


class _Libc:
    """The glibc entry points this module uses, or ``None`` for each one missing."""

    def __init__(self) -> None:
        self.mallinfo2: Callable[[], _MallInfo2] | None = None
        self.malloc_trim: Callable[[int], int] | None = None
        self.malloc_info: Any = None
        self.lib: Any = None
        if not sys.platform.startswith("linux"):
            return
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or None)
        except OSError:
            return
        self.lib = lib
        fn = getattr(lib, "mallinfo2", None)
        if fn is not None:
            fn.restype = _MallInfo2
            fn.argtypes = []
            self.mallinfo2 = fn
        trim = getattr(lib, "malloc_trim", None)
        if trim is not None:
            trim.restype = ctypes.c_int
            trim.argtypes = [ctypes.c_size_t]
            self.malloc_trim = trim
        info = getattr(lib, "malloc_info", None)
        if info is not None and hasattr(lib, "fdopen") and hasattr(lib, "fclose"):
            info.restype = ctypes.c_int
            info.argtypes = [ctypes.c_int, ctypes.c_void_p]
            lib.fdopen.restype = ctypes.c_void_p
            lib.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
            lib.fclose.argtypes = [ctypes.c_void_p]
            self.malloc_info = info


_libc = _Libc()

# A free chunk is listed by size class, or as ``unsorted`` while it waits in the
# unsorted bin (a big freed region often does, until the next malloc sorts it).
_FREE_CHUNK = re.compile(
    r'<(?:size|unsorted) from="(\d+)" to="(\d+)" total="(\d+)" count="(\d+)"/>'
)
_TOP = re.compile(r'<system type="current" size="(\d+)"/>')


def malloc_info_xml() -> str | None:
    """glibc's ``malloc_info`` report (XML), or ``None`` where it is unavailable."""
    if _libc.malloc_info is None:
        return None
    with tempfile.TemporaryFile() as tmp:
        fd = os.dup(tmp.fileno())
        fp = _libc.lib.fdopen(fd, b"w")
        if not fp:
            os.close(fd)
            return None
        try:
            _libc.malloc_info(0, fp)
        finally:
            _libc.lib.fclose(fp)  # flushes and closes the dup'ed descriptor
        tmp.seek(0)
        return tmp.read().decode("ascii", "replace")


def trimmable_estimate(xml: str, top_pad: int = 0) -> int:
    """Bytes ``malloc_trim(0)`` would give back, estimated from free-chunk sizes.

    The trim releases the whole pages inside each free chunk (and the top of the
    heap). A chunk of ``s`` bytes at a random page offset holds ``s / page - 1`` whole
    pages on average, so a histogram bucket of ``count`` chunks totalling ``total``
    bytes contributes ``total - count * page`` when positive. Only the per-arena
    histograms are counted (the process-wide one repeats them).
    """
    total = 0
    # finditer and str slices only: no GC-tracked objects (tuples, lists), so reading
    # the allocator on a scrape does not move the program's GC schedule.
    start = xml.find("<heap nr=")
    while start >= 0:
        end = xml.find("</sizes>", start)
        for m in _FREE_CHUNK.finditer(xml, start, end if end >= 0 else len(xml)):
            total += max(0, int(m.group(3)) - int(m.group(4)) * _PAGE)
        start = xml.find("<heap nr=", start + 1)
    return total + max(0, top_pad - _PAGE)


def read_malloc() -> MallocStats | None:
    """The C allocator's figures, or ``None`` without glibc ``mallinfo2`` (2.33+)."""
    if _libc.mallinfo2 is None:
        return None
    info = _libc.mallinfo2()
    stats = MallocStats(
        heap=int(info.arena),
        mmapped=int(info.hblkhd),
        in_use=int(info.uordblks + info.hblkhd),
        free=int(info.fordblks),
        top_pad=int(info.keepcost),
    )
    xml = malloc_info_xml()
    stats.trimmable = (
        min(stats.free, trimmable_estimate(xml, stats.top_pad)) if xml else stats.top_pad
    )
    return stats


# -- pymalloc --------------------------------------------------------------------------

_STAT_LINE = re.compile(r"^(.*?)\s+=\s+([\d,]+)\s*$")


def parse_debugmallocstats(text: str) -> PymallocStats:
    """Turn ``sys._debugmallocstats()`` output into :class:`PymallocStats`."""
    stats = PymallocStats()
    for line in text.splitlines():
        m = _STAT_LINE.match(line.strip())
        if not m:
            continue
        label, value = m.group(1), int(m.group(2).replace(",", ""))
        if label == "# arenas allocated current":
            stats.arenas = value
        elif "bytes/arena" in label:
            stats.arena_bytes = value
        elif label == "# bytes in allocated blocks":
            stats.in_use = value
        elif label == "# bytes in available blocks" or "unused pools" in label:
            stats.free += value
        elif label.startswith("# bytes lost to") and "arena map" not in label:
            stats.overhead += value
    return stats


_stderr_lock = threading.Lock()


def read_pymalloc() -> PymallocStats | None:
    """pymalloc's arena statistics, or ``None`` when pymalloc is not in use.

    ``sys._debugmallocstats`` writes to the C-level stderr, so descriptor 2 is pointed
    at a temporary file for the few milliseconds it takes; anything another thread
    writes to stderr meanwhile is copied back to the real stderr afterwards.
    """
    fn = getattr(sys, "_debugmallocstats", None)
    if fn is None:
        return None
    with _stderr_lock, tempfile.TemporaryFile() as tmp:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode("utf-8", "replace")
    stats_start = text.find("Small block threshold")
    if stats_start < 0:
        return None  # PYTHONMALLOC=malloc: no arenas
    if stats_start > 0:  # someone else's stderr output landed in the file: give it back
        os.write(2, text[:stats_start].encode("utf-8", "replace"))
    return parse_debugmallocstats(text[stats_start:])


# -- the rest --------------------------------------------------------------------------


def _read_rss(pid: int | str = "self") -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        try:
            import psutil

            return int(psutil.Process(None if pid == "self" else int(pid)).memory_info().rss)
        except Exception:  # noqa: BLE001 - no reader: report zero rather than fail
            return 0


def read_file_backed(pid: int | str = "self") -> int | None:
    """Resident file-backed bytes (code, mapped files) from ``smaps_rollup``."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            fields = dict(
                (parts[0].rstrip(":"), int(parts[1]) * 1024)
                for parts in (line.split() for line in fh)
                if len(parts) >= 3 and parts[2] == "kB"
            )
    except (OSError, ValueError):
        return None
    if "Rss" not in fields or "Anonymous" not in fields:
        return None
    return max(0, fields["Rss"] - fields["Anonymous"])


def _traced() -> int | None:
    import tracemalloc

    return tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None


# -- reading and verdict ---------------------------------------------------------------


def measure(*, pymalloc: bool = True, smaps: bool = True) -> Breakdown:
    """Read the current process's breakdown and give it a single-reading verdict.

    ``pymalloc=False`` skips the arena statistics (they redirect descriptor 2 briefly);
    ``smaps=False`` skips ``smaps_rollup`` (it holds the process's mmap lock).
    """
    out = Breakdown(rss=_read_rss())
    out.python = read_pymalloc() if pymalloc else None
    out.traced = _traced()
    out.malloc = read_malloc()
    out.file_backed = read_file_backed() if smaps else None
    explained = (out.python.arena_bytes if out.python else 0) + (
        out.malloc.heap + out.malloc.mmapped if out.malloc else 0
    )
    out.other = max(0, out.rss - explained - (out.file_backed or 0))
    out.verdict, out.reason = verdict(out)
    return out


ALLOCATOR_GAUGES = (
    ("in_use", "malloc_in_use_bytes", "C allocator (glibc malloc) bytes in use."),
    (
        "free",
        "malloc_free_bytes",
        "Bytes free inside the C allocator but still held by the process.",
    ),
    (
        "trimmable",
        "malloc_trimmable_bytes",
        "Estimate of what malloc_trim(0) would return to the OS.",
    ),
)


_gauge_cache: tuple[float, dict[str, int]] = (-1.0, {})
GAUGE_TTL = 1.0


def allocator_gauges() -> dict[str, int]:
    """The C allocator's figures for exporters (empty where glibc's are unavailable).

    Cheap enough for a scrape: ``mallinfo2`` and ``malloc_info`` walk the allocator's
    bins (milliseconds), and pymalloc's statistics (which redirect stderr) are skipped.
    A reading is reused for ``GAUGE_TTL`` seconds, so exporters scraped together
    (Prometheus and OpenTelemetry, or two scrapers) agree and the cost stays bounded.
    """
    global _gauge_cache
    now = time.monotonic()
    if now - _gauge_cache[0] < GAUGE_TTL:
        return dict(_gauge_cache[1])
    m = read_malloc()
    values = {} if m is None else {"in_use": m.in_use, "free": m.free, "trimmable": m.trimmable}
    _gauge_cache = (now, values)
    return dict(values)


def _much(free: int, total: int) -> bool:
    return free >= FREE_MIN_BYTES and total > 0 and free / total >= FREE_MIN_SHARE


def verdict(now: Breakdown, before: Breakdown | None = None) -> tuple[str, str]:
    """``(verdict, reason)`` for one reading, or for the change since ``before``.

    With two readings, memory in use that grew by at least half of the RSS growth
    (and by more than 16 MiB) is a growing heap. Otherwise free memory held by the
    C allocator is *holding* when a trim would return nearly all of it (at least
    ``HOLDING_SHARE``) and *fragmented* otherwise (free space scattered between
    live chunks, which a trim returns only in part); free space inside
    pymalloc's arenas is always fragmentation (an arena is freed only when empty).
    """
    from memlens.core.units import format_bytes as fb

    if before is not None:
        grown_use = _in_use(now) - _in_use(before)
        grown_rss = now.rss - before.rss
        if grown_use >= FREE_MIN_BYTES and grown_use >= 0.5 * max(grown_rss, 1):
            return GROWING, (
                f"memory in use grew by {fb(grown_use)} (RSS by {fb(grown_rss, signed=True)}):"
                " live objects are accumulating"
            )
    m, p = now.malloc, now.python
    if m is not None and _much(m.free, m.in_use + m.free):
        share = m.free / (m.in_use + m.free)
        if m.trimmable >= HOLDING_SHARE * m.free:
            return HOLDING, (
                f"the C allocator holds {fb(m.free)} free ({share:.0%} of its heap);"
                f" malloc_trim(0) would return about {fb(m.trimmable)}"
            )
        return FRAGMENTED, (
            f"the C allocator holds {fb(m.free)} free ({share:.0%} of its heap) in chunks"
            f" scattered between live ones; malloc_trim(0) would return only about"
            f" {fb(m.trimmable)}"
        )
    if p is not None and _much(p.free, p.in_use + p.free):
        return FRAGMENTED, (
            f"pymalloc's arenas hold {fb(p.free)} free beside {fb(p.in_use)} of live"
            " small objects: an arena is returned only when all its objects are gone"
        )
    return COMPACT, "little free memory is held by the allocators"


def native_growth_verdict(
    in_use_growth: int | None, rss_growth: int, now: Breakdown | None = None
) -> tuple[str, str]:
    """``(verdict, reason)`` for memory a leak finder saw grow outside Python objects.

    ``in_use_growth`` is how much the C allocator's bytes in use grew over the run
    (``None`` where they cannot be read), ``rss_growth`` how much RSS grew, ``now``
    a reading (taken here when omitted; no arena statistics, no smaps). Bytes in use
    that grew by at least half of the RSS growth are a *growing heap*: live native
    memory accumulates, a leak. Otherwise the growth is the allocator's: the reading's
    verdict says whether it is *fragmented* or *holding* free memory, and what
    ``malloc_trim(0)`` would return. The doctor's ``native`` findings carry this.
    """
    from memlens.core.units import format_bytes as fb

    reading = now if now is not None else measure(pymalloc=False, smaps=False)
    held = reading.verdict in (FRAGMENTED, HOLDING)
    if in_use_growth is not None and in_use_growth > 0 and in_use_growth >= 0.5 * rss_growth:
        reason = f"bytes in use grew by {fb(in_use_growth)}: live native memory accumulates"
        if held:
            reason += f"; besides, {reading.reason}"
        return GROWING, reason
    if held:
        return reading.verdict, reading.reason
    if in_use_growth is None:
        return COMPACT, (
            f"RSS grew by {fb(rss_growth, signed=True)}; the allocator's own figures are not"
            " readable here, so a leak cannot be told from fragmentation"
        )
    return COMPACT, (
        f"RSS grew by {fb(rss_growth, signed=True)} while bytes in use grew by"
        f" {fb(in_use_growth, signed=True)}; {reading.reason}"
    )


def _in_use(b: Breakdown) -> int:
    return (b.python.in_use if b.python else 0) + (b.malloc.in_use if b.malloc else 0)


# -- trimming --------------------------------------------------------------------------


@dataclass
class TrimResult:
    """What ``malloc_trim(0)`` did: bytes returned to the OS and how long it took."""

    rss_before: int
    rss_after: int
    pause: float  # seconds the trimming thread spent inside malloc_trim
    released: bool  # malloc_trim's own answer: whether any memory was returned

    @property
    def returned(self) -> int:
        return max(0, self.rss_before - self.rss_after)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["returned"] = self.returned
        return out


def trim_available() -> bool:
    """True where glibc's ``malloc_trim`` can be called."""
    return _libc.malloc_trim is not None


def trim() -> TrimResult:
    """Run ``malloc_trim(0)`` in a thread of this process and measure its effect.

    It runs in its own thread (named ``memlens-trim``) so the caller's thread is
    not the one inside the allocator; other threads that allocate meanwhile wait
    on the allocator's lock for about :attr:`TrimResult.pause`.
    """
    from memlens.core.errors import MemlensError

    fn = _libc.malloc_trim
    if fn is None:
        raise MemlensError("malloc_trim is not available here (it needs glibc on Linux)")
    result: dict[str, Any] = {}

    def work() -> None:
        result["before"] = _read_rss()
        t0 = time.perf_counter()
        result["released"] = bool(fn(0))
        result["pause"] = time.perf_counter() - t0
        result["after"] = _read_rss()

    thread = threading.Thread(target=work, name="memlens-trim", daemon=True)
    thread.start()
    thread.join()
    return TrimResult(
        rss_before=result["before"],
        rss_after=result["after"],
        pause=result["pause"],
        released=result["released"],
    )
