"""The process meter's kept ``/proc/self/status`` descriptor (issue #14): if the program
closes it, or reuses its number for another file, the meter notices and reopens its
own; it never reads or closes the program's file. Meter failures show in health and
clear when the meter reads again."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from memlens.core.config import Config
from memlens.heap.process_meter import ProcessMeter
from memlens.service import Monitor


def test_descriptor_closed_by_the_program_is_reopened() -> None:
    meter = ProcessMeter()
    assert meter.read()["rss"] > 0
    assert meter._fd is not None
    os.close(meter._fd)  # e.g. a daemonizing library closing every descriptor
    for _ in range(3):
        assert meter.read()["rss"] > 0


def test_descriptor_number_reused_for_another_file(tmp_path: Path) -> None:
    meter = ProcessMeter()
    meter.read()
    kept = meter._fd
    assert kept is not None
    os.close(kept)
    fake = tmp_path / "looks-like-status"
    fake.write_text("Name:\tpython\nVmRSS:\t100000000 kB\nVmSize:\t100000000 kB\n")
    theirs = os.open(fake, os.O_RDONLY)
    try:
        assert theirs == kept  # the lowest free number: the one memlens had
        rss = meter.read()["rss"]
        real = psutil.Process().memory_info().rss
        assert rss < 4 * real and rss > real / 4, (rss, real)  # not 95 GiB
        meter.close()
        os.fstat(theirs)  # still open: memlens did not close the program's file
        assert os.pread(theirs, 5, 0) == b"Name:"
    finally:
        os.close(theirs)


class Flaky:
    """A meter that fails while ``broken`` is set."""

    __qualname__ = "Flaky"

    def __init__(self) -> None:
        self.broken = False

    def __call__(self) -> dict[str, float]:
        if self.broken:
            raise OSError(9, "Bad file descriptor")
        return {"rss": 50e6}


def test_meter_failures_show_in_health_and_recover() -> None:
    flaky = Flaky()
    config = Config(mode="production", persist_history=False, sampling_interval=3600)
    monitor = Monitor(config, readers=[flaky]).start()  # samples only when told to here
    try:
        _check_health(monitor, flaky)
    finally:
        monitor.stop()


def _check_health(monitor: Monitor, flaky: Flaky) -> None:
    monitor.sample_now()
    assert monitor.health().status == "ok", monitor.health().reasons
    flaky.broken = True
    monitor.sample_now()
    health = monitor.health()
    assert health.status == "warning"
    assert any("Flaky" in r and "Bad file descriptor" in r for r in health.reasons)
    assert health.checks["failing_meters"] == ["Flaky"]
    flaky.broken = False
    monitor.sample_now()
    assert monitor.health().status == "ok", monitor.health().reasons
    assert monitor.health().checks["meter_errors"] == 1  # the count is kept
