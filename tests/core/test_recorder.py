import os
import threading
import time

import pytest

from memlens.core.clock import ManualClock
from memlens.core.recorder import Recorder
from memlens.core.series import Series


def test_manual_sampling_uses_the_clock():
    clock = ManualClock(start=100.0)
    calls = iter(range(1000))
    rec = Recorder(Series(), [lambda: {"v": next(calls)}], interval=1.0, clock=clock)
    rec.sample()
    clock.advance(5)
    rec.sample()
    assert rec.series.times() == [0.0, 5.0]
    assert rec.series.column("v") == [0.0, 1.0]


def test_broken_reader_does_not_stop_sampling():
    def broken():
        raise OSError("gone")

    rec = Recorder(Series(), [broken, lambda: {"ok": 1}], interval=1.0)
    rec.sample()
    assert rec.errors == 1 and "OSError" in rec.last_error
    assert rec.series.column("ok") == [1.0]


def test_thread_is_named_daemon_and_stops():
    rec = Recorder(Series(), [lambda: {"v": 1}], interval=0.01)
    rec.start()
    time.sleep(0.1)
    threads = [t for t in threading.enumerate() if t.name == "memlens-recorder"]
    assert threads and all(t.daemon for t in threads)
    rec.stop()
    assert not rec.running
    assert len(rec.series) >= 3


def test_invalid_interval():
    with pytest.raises(ValueError):
        Recorder(Series(), [], interval=0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_restarts_its_thread():
    rec = Recorder(Series(), [lambda: {"pid": os.getpid()}], interval=0.01, restart_after_fork=True)
    rec.start()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            time.sleep(0.3)
            pids = {int(v) for v in rec.series.column("pid")}
            ok = rec.running and os.getpid() in pids
            os.write(write_fd, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write_fd)
    answer = os.read(read_fd, 2)
    os.waitpid(pid, 0)
    rec.stop()
    assert answer == b"ok"
