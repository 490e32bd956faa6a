"""Stop a doctor run before the steps' memory growth reaches a limit.

A step that keeps hundreds of megabytes per call would, over the doctor's usual
schedule, take the machine's memory (swap, the OOM killer, other processes on a
shared host). :class:`MemoryLimit` watches the process's resident memory between
steps and tells the engine when the next call would take the growth past the
limit, so the run ends on the evidence it has: a memory-pressure stop.

The limit is the growth the steps may add to the resident memory seen when the
run began: ``max_memory`` when the user gives one, otherwise the smallest of
:data:`DEFAULT_CAP`, a quarter of the memory available on the machine, and half of
what a cgroup (container) limit or ``RLIMIT_AS`` still allows. Whatever the limit,
the run also stops when the next call would take more than half of the memory
still available on the machine (other processes use it too).
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

from memlens.heap.doctor import native

DEFAULT_CAP = 2 * 1024**3
# Resident memory is read at most this often (a read costs a few microseconds; a
# step that grows fast enough to matter takes far longer than this).
_READ_EVERY = 0.005
_AVAILABLE_EVERY = 0.1  # machine-wide figures (psutil reads /proc/meminfo)


def available_memory() -> int | None:
    """Bytes of memory the machine can still give without swapping, or None."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - no figure: the other limits still apply
        return None


def _cgroup_headroom() -> int | None:
    """Bytes the process's cgroup v2 may still use before its ``memory.max``."""
    try:
        line = Path("/proc/self/cgroup").read_text().splitlines()[0]
        rel = line.split("::", 1)[1] if line.startswith("0::") else None
        if rel is None:
            return None
        base = Path("/sys/fs/cgroup") / rel.lstrip("/")
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((base / "memory.current").read_text()))
    except (OSError, ValueError, IndexError):
        return None


def _address_space_headroom() -> int | None:
    """Bytes of address space left under ``RLIMIT_AS`` (``ulimit -v``), or None."""
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm", "rb") as fh:
            vms = int(fh.read().split()[0]) * resource.getpagesize()
        return max(0, soft - vms)
    except (OSError, ValueError, IndexError):
        return None


def default_allowance() -> int:
    """The growth a run may add when the user set no ``max_memory`` (see module doc)."""
    limits = [DEFAULT_CAP]
    available = available_memory()
    if available is not None:
        limits.append(available // 4)
    for headroom in (_cgroup_headroom(), _address_space_headroom()):
        if headroom is not None:
            limits.append(headroom // 2)
    return max(0, min(limits))


class MemoryLimit:
    """Resident-memory growth of a run against its allowance.

    Call :meth:`start` when the run begins and :meth:`observe` after every step;
    :attr:`exceeded` is true once the next call is expected to pass the limit.
    """

    def __init__(self, max_memory: int | None = None) -> None:
        self.max_memory = max_memory
        self.allowance = 0
        self.rss_start = 0
        self.rss = 0
        self.peak_rss = 0
        self.rate = 0.0  # bytes per call since the previous reading
        self.steady = False  # the last two readings grew at a like rate
        self.exceeded = False
        self.reason = ""
        self._at = 0  # iteration of the last reading
        self._read_t = 0.0
        self._available: int | None = None
        self._available_t = 0.0

    @property
    def user_set(self) -> bool:
        return self.max_memory is not None

    def start(self) -> None:
        self.allowance = self.max_memory if self.max_memory is not None else default_allowance()
        self.rss_start = self.rss = self.peak_rss = native.rss()
        self._at = 0
        self._read_t = time.perf_counter()
        self._available = available_memory()
        self._available_t = self._read_t
        self.rate = 0.0
        self.steady = False
        self.exceeded = False
        self.reason = ""

    def observe(self, iteration: int) -> bool:
        """Read the resident memory (when due) after ``iteration`` calls; True when
        the next call would take the growth past the limit."""
        if self.exceeded:
            return True
        now = time.perf_counter()
        if now - self._read_t < _READ_EVERY or iteration <= self._at:
            return False
        rss = native.rss()
        calls = iteration - self._at
        recent = (rss - self.rss) / calls
        # The recent rate, not the average: a one-time load on the first call must
        # not look like growth on every later one.
        previous, self.rate = self.rate, max(0.0, recent)
        self.steady = min(previous, self.rate) >= 0.5 * max(previous, self.rate) > 0
        self.rss, self._at, self._read_t = rss, iteration, now
        self.peak_rss = max(self.peak_rss, rss)
        if now - self._available_t >= _AVAILABLE_EVERY:
            self._available = available_memory()
            self._available_t = now
        if self.rate <= 0:
            return False
        if self.grown + self.rate > self.allowance:
            self.exceeded = True
            self.reason = "limit"
        elif self._available is not None and self.rate > self._available / 2:
            self.exceeded = True
            self.reason = "available"
        return self.exceeded

    def rebase(self, iteration: int) -> None:
        """Read the resident memory now, after work of the doctor's own (a
        checkpoint), so that the next rate counts only the steps' calls."""
        if self.exceeded:
            return
        self.rss = native.rss()
        self.peak_rss = max(self.peak_rss, self.rss)
        self._at = iteration
        self._read_t = time.perf_counter()

    @property
    def grown(self) -> int:
        """Resident bytes added since :meth:`start` (at the last reading)."""
        return self.rss - self.rss_start

    def calls_left(self) -> float:
        """Calls the allowance still takes at the current rate (inf: no growth, or
        growth not yet seen twice at a like rate: a one-time load is no rate)."""
        if self.rate <= 0 or not self.steady:
            return float("inf")
        return max(0.0, (self.allowance - self.grown) / self.rate)

    def describe(self) -> str:
        """Why the run stopped, for the report."""
        from memlens.core.units import format_bytes

        if self.reason == "available":
            where = "half of the memory still available on the machine"
        elif self.user_set:
            where = f"the --max-memory limit of {format_bytes(self.allowance)}"
        else:
            where = (
                f"the doctor's memory limit of {format_bytes(self.allowance)} "
                "(raise it with --max-memory)"
            )
        return (
            f"the run stopped for memory pressure after {self._at:,} calls: the steps had "
            f"added {format_bytes(self.grown)} of resident memory, about "
            f"{format_bytes(self.rate)} per call, and the next call would pass {where}"
        )
