"""Memory line by line: what each source line of the user's code allocates and keeps.

A line tracer (``sys.settrace``, local tracing only in the user's files) reads
tracemalloc at every line event of user code and resets tracemalloc's peak, so the
window between two events gives, for the line that ran in it:

- **allocated**: how high traced memory rose above the window's start (temporaries
  created and freed within the line are counted once at their high point);
- **net**: the change from the start of the window to its end;
- **hits**: how many times the line ran.

At the end, a tracemalloc snapshot charges every live block to the innermost user
line of its stack: **retained** at the end (exact, whatever the line-event timing).
When traced memory reaches a new peak, each line's running net is copied: its
**share of the peak**. Code called from a user line (the standard library, C
extensions) is charged to that line.
"""

from __future__ import annotations

import linecache
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import Any

from memlens.heap.frames import is_user_file
from memlens.heap.peaks import PeakWatch, reset_peak, reset_traced_peak

Line = tuple[str, int]
# A new peak is copied only when it beats the last copy by this much: copying every
# few bytes of growth would cost more than the lines being measured.
PEAK_STEP = 64 * 1024


@dataclass
class LineStat:
    """What one source line did (bytes; ``seconds`` is time spent in its windows)."""

    file: str
    line: int
    hits: int = 0
    allocating_hits: int = 0  # windows in which traced memory rose
    allocated: int = 0
    net: int = 0
    retained: int = 0
    at_peak: int = 0
    seconds: float = 0.0
    function: str = ""
    source: str = ""

    @property
    def temporary(self) -> int:
        """Bytes allocated that did not outlive their own line."""
        return max(0, self.allocated - max(self.net, 0))


@dataclass
class LineReport:
    """The result of a line-by-line run."""

    target: str
    duration: float
    peak: int
    retained: int
    lines: list[LineStat] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the totals, every line, and ``functions`` (each traced function
        with all its source lines from first to last, as a listing shows them)."""
        out = asdict(self)
        for row, stat in zip(out["lines"], self.lines):
            row["temporary"] = stat.temporary
        out["functions"] = [
            {"file": f, "function": fn, "lines": _listing(f, rows)}
            for f, fn, rows in self.functions()
        ]
        return out

    def functions(self) -> list[tuple[str, str, list[LineStat]]]:
        """Lines grouped by ``(file, function)``, busiest function first."""
        groups: dict[tuple[str, str], list[LineStat]] = {}
        for s in self.lines:
            groups.setdefault((s.file, s.function), []).append(s)
        ordered = sorted(
            groups.items(), key=lambda kv: -max(max(s.allocated, s.retained) for s in kv[1])
        )
        return [(f, fn, sorted(rows, key=lambda s: s.line)) for (f, fn), rows in ordered]


def _listing(file: str, rows: list[LineStat], gap: int = 3) -> list[dict[str, Any]]:
    """The function's lines from its first active line to its last, short gaps filled."""
    by_line = {s.line: s for s in rows}
    out: list[dict[str, Any]] = []
    previous = None
    for n in sorted(by_line):
        if previous is not None and 1 < n - previous <= gap:
            for k in range(previous + 1, n):
                text = linecache.getline(file, k).rstrip("\n")
                out.append(
                    {
                        "line": k,
                        "hits": 0,
                        "allocated": 0,
                        "at_peak": 0,
                        "retained": 0,
                        "net": 0,
                        "source": text,
                    }
                )
        s = by_line[n]
        out.append(
            {
                "line": n,
                "hits": s.hits,
                "allocated": s.allocated,
                "at_peak": s.at_peak,
                "retained": s.retained,
                "net": s.net,
                "source": s.source,
            }
        )
        previous = n
    return out


class LineTracer:
    """Collects :class:`LineStat` per user line while installed.

    ``is_user`` decides which files are traced (default: not the standard library,
    site-packages or memlens). Use :meth:`run` for one call, or
    :meth:`start`/:meth:`stop` around a block.
    """

    def __init__(self, is_user: Callable[[str], bool] = is_user_file, depth: int = 16) -> None:
        self.is_user = is_user
        self.depth = depth
        self.stats: dict[Line, LineStat] = {}
        self._running: dict[Line, int] = {}
        self._peak_copy: dict[Line, int] = {}
        self._peak_seen = 0
        self._last: Line | None = None
        self._last_mem = 0
        self._last_t = 0.0
        self._started_tracing = False
        self._watch: PeakWatch  # this tracer's peak reader, from start() on
        self._previous: Any = None
        self._t0 = 0.0
        self._user_cache: dict[str, bool] = {}
        self._codes: dict[Any, bool] = {}
        self._noise_rise = 0
        self._noise_net = 0

    # -- tracing ---------------------------------------------------------------------
    def _user(self, filename: str) -> bool:
        known = self._user_cache.get(filename)
        if known is None:
            known = self._user_cache[filename] = self.is_user(filename)
        return known

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        traced = self._codes.get(code)
        if traced is None:
            traced = self._codes[code] = self._user(code.co_filename)
        if traced:
            # The callee's set-up belongs to the calling line's window, which its
            # first line event closes.
            return self._local
        return None

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self._close((frame.f_code.co_filename, frame.f_lineno), frame)
        elif event == "return":
            caller = frame.f_back
            # The rest of the caller's line (the returned value's use) is the caller's.
            if caller is not None and self._codes.get(caller.f_code):
                self._close((caller.f_code.co_filename, caller.f_lineno), None)
            else:
                self._close(None, None)
        return self._local

    def _close(self, nxt: Line | None, frame: FrameType | None) -> None:
        """End the current window, charge it to the line that ran in it, open the next.

        ``frame`` is given when ``nxt`` starts executing (a hit). One reading per
        event: under tracemalloc every object the tracer makes is itself traced (and
        costs a stack walk), so the tracer's own bytes per window are measured once
        at start (:meth:`_calibrate`) and subtracted instead.
        """
        current, peak = tracemalloc.get_traced_memory()
        watch = self._watch
        if watch._carried > peak:  # another reader reset the peak in this window
            peak = watch._carried
        # Through heap/peaks.py: a profiler or monitor running meanwhile keeps its peak.
        reset_traced_peak(watch)
        now = time.perf_counter()
        key = self._last
        if key is not None:
            stat = self.stats[key]
            delta = current - self._last_mem - self._noise_net
            stat.net += delta
            # Summed unclipped: the noise correction is right on average, so small
            # allocations repeated many times still add up.
            rise = peak - self._last_mem - self._noise_rise
            stat.allocated += rise
            if rise > 0:
                stat.allocating_hits += 1
            stat.seconds += now - self._last_t
            running = self._running
            running[key] = running.get(key, 0) + delta
            if peak > self._peak_seen + PEAK_STEP:
                self._peak_seen = peak
                self._peak_copy = dict(running)
        if nxt is not None:
            row = self.stats.get(nxt)
            if row is None:
                row = self.stats[nxt] = LineStat(nxt[0], nxt[1])
            if frame is not None:
                row.hits += 1
                if not row.function:
                    row.function = frame.f_code.co_name
        self._last = nxt
        self._last_mem = current
        self._last_t = now

    def _calibrate(self, rounds: int = 400) -> None:
        """Measure what one event of the tracer itself allocates (see :meth:`_close`)."""
        key: Line = ("<memlens calibration>", 0)
        self.stats[key] = LineStat(key[0], key[1])
        self._noise_rise = self._noise_net = 0
        self._last = key
        self._last_mem = tracemalloc.get_traced_memory()[0]
        for _ in range(rounds):
            self._close(key, None)
        stat = self.stats.pop(key)
        self._running.clear()
        self._noise_rise = stat.allocated // rounds
        self._noise_net = stat.net // rounds
        self._last = None

    # -- control -----------------------------------------------------------------------
    def start(self) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(self.depth)
            self._started_tracing = True
        self._watch = PeakWatch()
        self._calibrate()
        self._peak_seen = 0
        self._peak_copy = {}
        reset_peak(self._watch)
        self._last_mem = tracemalloc.get_traced_memory()[0]
        self._last_t = self._t0 = time.perf_counter()
        self._previous = sys.gettrace()
        sys.settrace(self._global)

    def stop(self, target: str, error: str | None = None) -> LineReport:
        sys.settrace(self._previous)
        self._close(None, None)
        duration = time.perf_counter() - self._t0
        snapshot = tracemalloc.take_snapshot()
        peak = max(self._peak_seen, self._watch.peak())
        self._watch.close()
        if self._started_tracing:
            tracemalloc.stop()
        retained = self._charge_retained(snapshot)
        for key, value in self._peak_copy.items():
            if key in self.stats:
                self.stats[key].at_peak = max(0, value)
        rows = [s for s in self.stats.values() if s.line > 0]
        for s in rows:
            s.allocated = max(0, s.allocated, s.net)
            s.source = linecache.getline(s.file, s.line).rstrip("\n")
        rows.sort(key=lambda s: (s.file, s.line))
        return LineReport(target, duration, peak, retained, rows, error)

    def _charge_retained(self, snapshot: tracemalloc.Snapshot) -> int:
        total = 0
        user = self._user
        for stat in snapshot.statistics("traceback"):
            for frame in reversed(stat.traceback):  # innermost first
                if user(frame.filename):
                    key = (frame.filename, frame.lineno)
                    row = self.stats.get(key)
                    if row is None:
                        row = self.stats[key] = LineStat(key[0], key[1])
                    row.retained += stat.size
                    total += stat.size
                    break
        return total

    def run(self, target: str, call: Callable[[], object]) -> LineReport:
        """Run ``call()`` under the tracer; an exception is recorded, not raised."""
        self.start()
        error = None
        try:
            call()
        except SystemExit as exc:
            if exc.code not in (None, 0):
                error = f"SystemExit: {exc.code}"
        except Exception as exc:  # noqa: BLE001 - the report says what the target raised
            error = f"{type(exc).__name__}: {exc}"
        finally:
            report = self.stop(target, error)
        return report


def profile_lines(target: str, argv: list[str] | None = None) -> LineReport:
    """Run a script (``path.py``) or call ``package.module:function`` line by line."""
    from memlens.heap.doctor.targets import resolve

    if target.endswith(".py") or os.path.isfile(target):
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            from memlens.core.errors import TargetError

            raise TargetError(f"script not found: {target}")
        return _run_script(path, argv or [])
    fn, _root = resolve(target)
    if not callable(fn):
        from memlens.core.errors import TargetError

        raise TargetError(f"{target} is not callable")
    return LineTracer().run(target, fn)


def _run_script(path: str, argv: list[str]) -> LineReport:
    import runpy

    saved_argv, saved_path0 = sys.argv[:], sys.path[0] if sys.path else None
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(path))
    try:
        # run_path returns a copy of the script's globals: keeping it until the end
        # snapshot is what keeps the script's module-level objects alive for it.
        kept: list[object] = []
        return LineTracer().run(
            path, lambda: kept.append(runpy.run_path(path, run_name="__main__"))
        )
    finally:
        sys.argv = saved_argv
        if sys.path and sys.path[0] == os.path.dirname(path):
            del sys.path[0]
        if saved_path0 is not None and (not sys.path or sys.path[0] != saved_path0):
            sys.path.insert(0, saved_path0)
