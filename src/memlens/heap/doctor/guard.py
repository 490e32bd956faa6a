"""Keep a step from running past the doctor's budget.

A step that hangs (a blocked socket, a lock never released, an endless loop) would
keep the doctor running forever. :class:`Deadline` interrupts it: on the main thread
with ``SIGALRM`` (which also wakes blocking calls such as ``time.sleep`` or a lock
wait), elsewhere by raising an asynchronous exception in the step's thread, which
takes effect at the next Python bytecode.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType

# Without the scheduler's run-delay figures (not Linux), a step that waits (I/O,
# sleep, a lock) uses little CPU: its budget also runs out once wall-clock time
# reaches this many times the budget.
WALL_FACTOR = 3.0
# How often the run-delay figures are re-read (reading them costs ~50-200 us).
_REFRESH = 0.02


def _run_delay() -> float | None:
    """Seconds the process's threads spent runnable but waiting for a CPU (Linux
    schedstat), or None where that is not available."""
    try:
        total = 0
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/schedstat", "rb") as fh:
                total += int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


class BudgetClock:
    """Seconds of budget used: wall-clock time since :meth:`start` minus the time the
    process waited for a CPU that other processes were using (Linux ``schedstat``),
    and never less than the process's CPU time.

    A busy machine (other processes on the same cores) stretches the wall clock but
    not this, so a run makes the same number of iterations and checkpoints, and
    reaches the same verdict, on a loaded machine as on a quiet one (only later);
    a step that waits for I/O or sleeps still uses its budget as wall time. Without
    schedstat: the CPU time, or a third of the wall time when that is more.
    """

    def __init__(self) -> None:
        self.start()

    def start(self) -> None:
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter()
        self._delay0 = _run_delay()
        self._read_at = self._wall0
        self._used = 0.0

    def __call__(self) -> float:
        now = time.perf_counter()
        wall = now - self._wall0
        cpu = time.process_time() - self._cpu0
        if self._delay0 is None:
            return max(cpu, wall / WALL_FACTOR)
        if now - self._read_at >= _REFRESH:
            delay = _run_delay()
            if delay is not None:
                self._used = max(0.0, wall - (delay - self._delay0))
                self._read_at = now
        # Between readings, the wall time since the last one counts in full.
        return max(cpu, self._used + (now - self._read_at))


class StepTimeout(BaseException):
    """Raised inside a step that is still running at the hard deadline.

    A ``BaseException`` so that a step's own ``except Exception`` does not swallow it.
    """


class Deadline:
    """``with Deadline(seconds):`` raises :class:`StepTimeout` in the body when it runs over.

    Only while :attr:`armed` is true (the user's code is running): a deadline that
    passes while the doctor itself works is delivered when user code runs again.
    """

    def __init__(self, seconds: float, clock: Callable[[], float] | None = None) -> None:
        """``clock`` (a :class:`BudgetClock`) measures the seconds; the timer only
        wakes up to look at it. Without one, wall-clock seconds from ``__enter__``."""
        self.seconds = max(0.01, seconds)
        self.clock = clock
        self._t0 = time.perf_counter()
        self.armed = True
        self._timer: threading.Timer | None = None
        self._old_handler: object = None
        self._use_signal = False
        self._done = threading.Event()

    def _left(self) -> float:
        """Seconds left before the deadline, by the clock."""
        if self.clock is None:
            return self.seconds - (time.perf_counter() - self._t0)
        return self.seconds - self.clock()

    def __enter__(self) -> Deadline:
        self._t0 = time.perf_counter()
        main = threading.current_thread() is threading.main_thread()
        if main and hasattr(signal, "setitimer"):
            current = signal.getsignal(signal.SIGALRM)
            # Never take over a program's own SIGALRM handler.
            if current in (signal.SIG_DFL, signal.SIG_IGN, None):
                self._old_handler = current
                signal.signal(signal.SIGALRM, self._on_alarm)
                signal.setitimer(signal.ITIMER_REAL, self.seconds)
                self._use_signal = True
                return self
        ident = threading.get_ident()
        self._timer = threading.Timer(self.seconds, self._interrupt, args=(ident,))
        self._timer.name = "memlens-doctor-deadline"
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._use_signal:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old_handler)  # type: ignore[arg-type]
        elif self._timer is not None:
            self._timer.cancel()

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        left = self._left()
        if left > 0:  # the budget clock runs slower than the wall clock
            signal.setitimer(signal.ITIMER_REAL, max(0.02, left))
            return
        if self.armed:
            raise StepTimeout()
        signal.setitimer(signal.ITIMER_REAL, 0.02)  # try again once user code runs

    def _interrupt(self, ident: int) -> None:
        while not self._done.is_set():
            left = self._left()
            if left <= 0 and self.armed:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(ident), ctypes.py_object(StepTimeout)
                )
                return
            self._done.wait(max(0.02, min(left, 1.0)))
