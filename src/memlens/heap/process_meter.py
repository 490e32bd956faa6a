"""Process meter: how much memory the operating system gives the process.

Costs per read (measured, see ``benchmarks/bench_run_overhead.py``):

- ``read()``: one ``pread`` of ``/proc/<pid>/status`` on a descriptor kept open
  (RSS, VMS, peak RSS, swap), about 10 µs at any process size. Safe at high
  frequency.
- USS and PSS come from ``/proc/<pid>/smaps_rollup``, which costs about 9 ms per GiB
  resident and holds the target's mmap lock while the kernel walks its pages. So
  it is read at most once per ``smaps_interval`` seconds and skipped entirely above
  ``smaps_max_rss`` bytes resident.
- Where ``/proc`` is missing (macOS, Windows) psutil answers instead; its full
  memory info is as expensive as smaps and follows the same cadence.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

_STATUS_FIELDS = {
    b"VmRSS:": "rss",
    b"VmSize:": "vms",
    b"VmHWM:": "peak_rss",
    b"VmSwap:": "swap",
}
_SMAPS_FIELDS = {
    b"Pss:": "pss",
    b"Private_Clean:": "uss",
    b"Private_Dirty:": "uss",
    b"Swap:": "swap",
}


class ProcessMeter:
    """Reads RSS/VMS/peak/swap cheaply and USS/PSS at a bounded cadence."""

    name = "process"

    def __init__(
        self,
        pid: int | None = None,
        smaps_interval: float = 10.0,
        smaps_max_rss: int = 4 * 1024**3,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._follow_self = pid is None
        self.pid = pid if pid is not None else os.getpid()
        self._fd: int | None = None
        self._fd_pid = 0
        self._fd_id: tuple[int, int] = (0, 0)
        self.smaps_interval = smaps_interval
        self.smaps_max_rss = smaps_max_rss
        self._monotonic = monotonic
        self._last_smaps = -float("inf")
        self._status_path = f"/proc/{self.pid}/status"
        self._smaps_path = f"/proc/{self.pid}/smaps_rollup"
        self._use_proc = os.path.exists(self._status_path)
        self._smaps_ok = self._use_proc and os.path.exists(self._smaps_path)
        self._psutil_proc = None

    def read(self) -> dict[str, int]:
        """Current RSS, VMS, peak RSS and swap in bytes (cheap)."""
        if self._use_proc:
            return self._read_status()
        return self._read_psutil()

    def read_detailed(self, force: bool = False) -> dict[str, int]:
        """USS, PSS and swap in bytes when due (or ``force``), else ``{}``.

        Skipped above ``smaps_max_rss`` because the kernel's walk grows with RSS
        and blocks the process's own mmap/munmap calls meanwhile.
        """
        now = self._monotonic()
        if not force and now - self._last_smaps < self.smaps_interval:
            return {}
        self._last_smaps = now
        if self._smaps_ok:
            rss = self.read().get("rss", 0)
            if rss > self.smaps_max_rss and not force:
                return {}
            return self._read_smaps()
        try:
            info = self._proc().memory_full_info()
        except Exception:  # noqa: BLE001 - permission/platform: detailed figures are optional
            return {}
        out = {"uss": int(getattr(info, "uss", 0))}
        for name in ("pss", "swap"):
            if hasattr(info, name):
                out[name] = int(getattr(info, name))
        return out

    def _owned_fd(self) -> int | None:
        """The kept descriptor if it is still our status file, else None.

        The program may close a descriptor it did not open (``os.closerange``, a
        daemonizing library) and then open another file that gets the same number:
        reading that would report its bytes as our memory. The descriptor is ours only
        while it still refers to the file we opened (same device and inode).
        """
        if self._fd is None or self._fd_pid != os.getpid():
            return None
        try:
            info = os.fstat(self._fd)
        except OSError:
            return None
        return self._fd if (info.st_dev, info.st_ino) == self._fd_id else None

    def _open_status(self) -> int:
        pid = os.getpid()
        if self._follow_self:
            self.pid = pid
            self._status_path = f"/proc/{pid}/status"
            self._smaps_path = f"/proc/{pid}/smaps_rollup"
        fd = os.open(self._status_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        info = os.fstat(fd)
        self._fd, self._fd_pid, self._fd_id = fd, pid, (info.st_dev, info.st_ino)
        return fd

    def _read_status(self) -> dict[str, int]:
        # One descriptor kept open and read with pread: half the cost of open/read/close.
        # /proc/self resolves when opened, so a forked child must open its own.
        fd = self._owned_fd()
        if fd is None:
            # never close a descriptor that is no longer ours: it is the program's now
            fd = self._open_status()
        data = os.pread(fd, 8192, 0)
        if not data.startswith(b"Name:"):
            data = os.pread(self._open_status(), 8192, 0)
        out: dict[str, int] = {}
        for key, name in _STATUS_FIELDS.items():
            at = data.find(key)
            if at >= 0:
                end = data.find(b" kB", at)
                out[name] = int(data[at + len(key) : end]) * 1024
        return out

    def close(self) -> None:
        """Release the kept /proc descriptor (reads reopen it if needed)."""
        fd = self._owned_fd()
        if fd is not None:
            os.close(fd)
        self._fd = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()

    def _read_smaps(self) -> dict[str, int]:
        out = {"pss": 0, "uss": 0, "swap": 0}
        with open(self._smaps_path, "rb") as fh:
            for line in fh:
                name = _SMAPS_FIELDS.get(line.split(b" ", 1)[0])
                if name is not None:
                    out[name] += int(line.split()[1]) * 1024
        return out

    def _proc(self) -> Any:
        if self._psutil_proc is None:
            import psutil

            self._psutil_proc = psutil.Process(self.pid)
        return self._psutil_proc

    def _read_psutil(self) -> dict[str, int]:
        info = self._proc().memory_info()
        out = {"rss": int(info.rss), "vms": int(info.vms)}
        peak = getattr(info, "peak_wset", None)  # Windows
        if peak is None:
            try:
                import resource

                scale = 1 if os.uname().sysname == "Darwin" else 1024
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
            except Exception:  # noqa: BLE001
                peak = info.rss
        out["peak_rss"] = int(peak)
        return out
