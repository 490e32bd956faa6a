"""The recorder: a daemon thread that reads meters into a :class:`Series`.

It knows nothing about what the meters measure: each reader is a callable returning
``{field: value}``. A reader that raises is counted and skipped, so one broken meter
never stops sampling. After ``os.fork()`` the thread does not exist in the child;
with ``restart_after_fork`` the child starts its own (gunicorn/uwsgi preload).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence

from memlens.core.clock import SYSTEM_CLOCK, Clock
from memlens.core.series import Series

Reader = Callable[[], Mapping[str, float]]
Listener = Callable[[float, Mapping[str, float]], None]

_live: weakref.WeakSet[Recorder] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for recorder in list(_live):
        recorder._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Recorder:
    """Samples ``readers`` every ``interval`` seconds into ``series``."""

    def __init__(
        self,
        series: Series,
        readers: Sequence[Reader],
        interval: float,
        clock: Clock = SYSTEM_CLOCK,
        origin: float | None = None,
        listeners: Sequence[Listener] = (),
        restart_after_fork: bool = False,
        name: str = "memlens-recorder",
    ) -> None:
        if not interval > 0:
            raise ValueError("interval must be greater than zero")
        self.series = series
        self.readers = list(readers)
        self.interval = interval
        self.clock = clock
        self.origin = clock.monotonic() if origin is None else origin
        self.listeners = list(listeners)
        self.restart_after_fork = restart_after_fork
        self.name = name
        self.errors = 0
        self.last_error: str | None = None
        #: meters whose read failed in the latest sample (emptied once they read again)
        self.failing: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    @property
    def lock(self) -> threading.Lock:
        """Held while a sample is appended; hold it to read the series from another thread."""
        return self._lock

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, sample_now: bool = True) -> None:
        """Take one sample now and start the background thread.

        ``sample_now=False`` leaves the first sample to the thread (at once, not an
        interval later): after fork, where the caller is the child's main thread
        inside ``os.fork()``, which should return without reading any meter.
        """
        if self.running:
            return
        self._stop.clear()
        if sample_now:
            self.sample()
        self._thread = threading.Thread(
            target=self._loop, args=(not sample_now,), name=self.name, daemon=True
        )
        self._thread.start()
        _live.add(self)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and take a last sample."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        _live.discard(self)

    def sample(self) -> dict[str, float]:
        """Read every meter once, append to the series and notify listeners."""
        values: dict[str, float] = {}
        failing: dict[str, str] = {}
        for reader in self.readers:
            try:
                values.update(reader())
            except Exception as exc:  # noqa: BLE001 - a broken meter must not stop sampling
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                name = getattr(reader, "__qualname__", None) or type(reader).__name__
                failing[name] = self.last_error
        self.failing = failing
        t = self.clock.monotonic() - self.origin
        with self._lock:
            self.series.append(t, values)
        for listener in self.listeners:
            try:
                listener(t, values)
            except Exception as exc:  # noqa: BLE001
                self.errors += 1
                self.last_error = f"listener {type(exc).__name__}: {exc}"
        return values

    def _loop(self, first: bool = False) -> None:
        if first:
            self.sample()
        while not self._stop.wait(self.interval):
            self.sample()

    def _after_fork(self) -> None:
        # The child inherits our state but not our thread; locks may be held by
        # threads that no longer exist, so replace them.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        was_running = self._thread is not None
        self._thread = None
        self._pid = os.getpid()
        if was_running and self.restart_after_fork:
            self.start(sample_now=False)
        else:
            _live.discard(self)
