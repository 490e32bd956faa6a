"""Peak and retained memory of a block or a call, reported like the monitor reports operations.

    with memory_efficient_context("load batch") as mem:
        rows = load()
    print(mem.peak, mem.retained)          # bytes above the level at entry

    @monitor_function_memory
    def handle(request): ...
    handle.memory_stats()                  # calls, max peak, retained in total

*Peak* is the highest RSS seen during the block: a shared ``memlens-peaks`` thread
reads RSS every ``sample_interval`` while any block is open (about 10 µs a read),
and the kernel's high-water mark catches a spike above every earlier one.
*Retained* is RSS (and the allocator's and tracemalloc's figures) after the block
minus before, after a ``gc.collect()`` when ``collect`` is on, so cycles the block
made do not count. RSS is per process: blocks running at the same time in other
threads see each other's memory.

If a :class:`memlens.Monitor` is running, each block is also a tracked operation
(``MemoryOperationStarted``/``MemoryOperationCompleted`` events, exactly as
``Monitor.track_operation``). A ``MemoryError`` inside a block is logged with the
figures so far and re-raised, never swallowed.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import inspect
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, TypeVar, overload

from memlens.core.units import format_bytes
from memlens.remedies.readings import MemoryReading, read_memory

logger = logging.getLogger("memlens.remedies")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class BlockMemory:
    """What one block or call did to memory (filled in when it ends)."""

    name: str
    duration: float = 0.0
    rss_before: int = 0
    rss_after: int = 0
    rss_peak: int = 0
    peak: int = 0  # rss_peak - rss_before
    retained: int = 0  # rss_after - rss_before
    allocator_retained: int | None = None
    traced_retained: int | None = None
    error: str | None = None

    @property
    def retained_best(self) -> int:
        """The allocator's figure where there is one, else RSS: RSS misses memory that
        was already resident (reused from the allocator's free lists)."""
        return self.allocator_retained if self.allocator_retained is not None else self.retained

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        text = (
            f"{self.name}: peak {format_bytes(self.peak, signed=True)}, retained "
            f"{format_bytes(self.retained, signed=True)} in {self.duration:.3f} s"
        )
        return text + (f" ({self.error})" if self.error else "")


class _PeakSampler:
    """One thread reading RSS while any block is open; lingers a second after the last."""

    linger = 1.0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: dict[int, list[int]] = {}  # block id -> [max rss seen]
        self.interval = 0.002
        self.thread: threading.Thread | None = None
        self.next_id = 0

    def open(self, rss: int, interval: float) -> int:
        with self.lock:
            self.next_id += 1
            self.active[self.next_id] = [rss]
            self.interval = min(self.interval, interval) if len(self.active) > 1 else interval
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="memlens-peaks", daemon=True)
                self.thread.start()
            return self.next_id

    def close(self, block: int) -> int:
        with self.lock:
            return self.active.pop(block, [0])[0]

    def _run(self) -> None:
        idle_since: float | None = None
        while True:
            rss = read_memory().rss
            with self.lock:
                if not self.active:
                    now = time.monotonic()
                    idle_since = idle_since or now
                    if now - idle_since >= self.linger:
                        self.thread = None
                        return
                else:
                    idle_since = None
                    for box in self.active.values():
                        if rss > box[0]:
                            box[0] = rss
                interval = self.interval
            time.sleep(interval)

    def after_fork(self) -> None:
        self.lock = threading.Lock()
        self.thread = None
        if self.active:  # blocks open in the forking thread go on in the child
            self.thread = threading.Thread(target=self._run, name="memlens-peaks", daemon=True)
            self.thread.start()


_sampler = _PeakSampler()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_sampler.after_fork)


def _high_water() -> int:
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _running_monitors() -> list[Any]:
    # A monitor can only be running if its module was imported: no import cost otherwise.
    module = sys.modules.get("memlens.service.monitor")
    running = getattr(module, "running_monitors", None)
    return list(running()) if running is not None else []


def _diff(a: int | None, b: int | None) -> int | None:
    return a - b if a is not None and b is not None else None


@contextlib.contextmanager
def memory_efficient_context(
    name: str = "block",
    *,
    collect: bool = True,
    sample_interval: float = 0.002,
    monitor: Any = None,
) -> Iterator[BlockMemory]:
    """Measure a block's peak and retained memory (see the module docstring).

    ``collect``: run ``gc.collect()`` as the block ends, so reference cycles it left
    are freed at once rather than at some later request. ``monitor``: emit the
    operation events on this monitor (default: every running one).
    """
    report = BlockMemory(name)
    monitors = [monitor] if monitor is not None else _running_monitors()
    with contextlib.ExitStack() as stack:
        for mon in monitors:
            stack.enter_context(mon.track_operation(name))
        before = read_memory()
        hwm_before = _high_water()
        block = _sampler.open(before.rss, sample_interval)
        began = time.perf_counter()
        try:
            yield report
        except MemoryError:
            report.error = "MemoryError"
            _finish(report, before, hwm_before, block, began, collect=False)
            with contextlib.suppress(Exception):
                logger.error("MemoryError in %s", report.describe())
            raise
        except BaseException as exc:
            report.error = f"{type(exc).__name__}: {exc}"
            _finish(report, before, hwm_before, block, began, collect)
            raise
        else:
            _finish(report, before, hwm_before, block, began, collect)


def _finish(
    report: BlockMemory,
    before: MemoryReading,
    hwm_before: int,
    block: int,
    began: float,
    collect: bool,
) -> None:
    report.duration = time.perf_counter() - began
    peak = _sampler.close(block)
    if collect:
        gc.collect()
    after = read_memory()
    hwm_after = _high_water()
    if hwm_after > hwm_before:  # a spike above every earlier one: the kernel saw its top
        peak = max(peak, hwm_after)
    report.rss_before, report.rss_after = before.rss, after.rss
    report.rss_peak = max(peak, before.rss, after.rss)
    report.peak = report.rss_peak - before.rss
    report.retained = after.rss - before.rss
    report.allocator_retained = _diff(after.allocator_in_use, before.allocator_in_use)
    report.traced_retained = _diff(after.traced, before.traced)


@dataclass
class FunctionMemoryStats:
    """Totals over the calls of a function decorated with :func:`monitor_function_memory`.

    ``retained_total`` sums :attr:`BlockMemory.retained_best` (allocator bytes on glibc).
    """

    name: str
    calls: int = 0
    errors: int = 0
    max_peak: int = 0
    retained_total: int = 0
    last: BlockMemory | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@overload
def monitor_function_memory(func: F) -> F: ...


@overload
def monitor_function_memory(
    *,
    name: str | None = None,
    collect: bool = False,
    log_level: int = logging.DEBUG,
    warn_retained: int | None = None,
) -> Callable[[F], F]: ...


def monitor_function_memory(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    collect: bool = False,
    log_level: int = logging.DEBUG,
    warn_retained: int | None = None,
) -> Any:
    """Measure every call of a function (sync or async) like :func:`memory_efficient_context`.

    Each call is logged at ``log_level`` (a warning when it retained more than
    ``warn_retained`` bytes, by :attr:`BlockMemory.retained_best`); ``fn.memory_stats()``
    returns the totals. ``collect`` is
    off by default here: a full collection per call is too dear for most functions.
    """

    def decorate(f: Callable[..., Any]) -> Any:
        label = name or f.__qualname__
        stats = FunctionMemoryStats(label)
        lock = threading.Lock()

        def record(report: BlockMemory) -> None:
            with lock:
                stats.calls += 1
                stats.errors += report.error is not None
                stats.max_peak = max(stats.max_peak, report.peak)
                stats.retained_total += report.retained_best
                stats.last = report
            level = log_level
            if warn_retained is not None and report.retained_best > warn_retained:
                level = logging.WARNING
            if logger.isEnabledFor(level):
                logger.log(level, "%s", report.describe())

        if inspect.iscoroutinefunction(f):

            @functools.wraps(f)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                box: list[BlockMemory] = []
                try:
                    with memory_efficient_context(label, collect=collect) as report:
                        box.append(report)
                        return await f(*args, **kwargs)
                finally:  # after the block has ended, so the report is complete
                    if box:
                        record(box[0])

            wrapper: Any = async_wrapper
        else:

            @functools.wraps(f)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                box: list[BlockMemory] = []
                try:
                    with memory_efficient_context(label, collect=collect) as report:
                        box.append(report)
                        return f(*args, **kwargs)
                finally:  # after the block has ended, so the report is complete
                    if box:
                        record(box[0])

            wrapper = sync_wrapper
        wrapper.memory_stats = lambda: stats
        return wrapper

    return decorate(func) if func is not None else decorate
