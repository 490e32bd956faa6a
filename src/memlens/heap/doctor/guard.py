"""Keep a step from running past the doctor's budget.

A step that hangs (a blocked socket, a lock never released, an endless loop) would
keep the doctor running forever. :class:`Deadline` interrupts it: on the main thread
with ``SIGALRM`` (which also wakes blocking calls such as ``time.sleep`` or a lock
wait), elsewhere by raising an asynchronous exception in the step's thread, which
takes effect at the next Python bytecode.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from types import FrameType, TracebackType


class StepTimeout(BaseException):
    """Raised inside a step that is still running at the hard deadline.

    A ``BaseException`` so that a step's own ``except Exception`` does not swallow it.
    """


class Deadline:
    """``with Deadline(seconds):`` raises :class:`StepTimeout` in the body when it runs over.

    Only while :attr:`armed` is true (the user's code is running): a deadline that
    passes while the doctor itself works is delivered when user code runs again.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = max(0.01, seconds)
        self.armed = True
        self._timer: threading.Timer | None = None
        self._old_handler: object = None
        self._use_signal = False
        self._done = threading.Event()

    def __enter__(self) -> Deadline:
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
        if self.armed:
            raise StepTimeout()
        signal.setitimer(signal.ITIMER_REAL, 0.02)  # try again once user code runs

    def _interrupt(self, ident: int) -> None:
        while not self._done.is_set():
            if self.armed:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(ident), ctypes.py_object(StepTimeout)
                )
                return
            self._done.wait(0.02)
