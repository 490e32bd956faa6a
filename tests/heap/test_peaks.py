"""One reader's peak reset never lowers another's (``heap/peaks.py``), whoever the
readers are: profilers, the line tracer, the pytest plugin."""

from __future__ import annotations

import tracemalloc

from memlens.heap import peaks
from memlens.heap.lines import LineTracer
from memlens.profiling import Profiler

MB = 1_000_000


def _spike() -> None:
    scratch = bytearray(20 * MB)
    del scratch


def _small_work() -> int:
    total = 0
    for i in range(50):
        total += len(str(i))
    return total


def test_the_line_tracer_keeps_a_running_profilers_peak() -> None:
    outer = Profiler("outer", interval=1).start()
    try:
        _spike()  # the outer session's peak: 20 MB above its start
        tracer = LineTracer(is_user=lambda f: f == __file__)
        tracer.start()
        try:
            _small_work()  # the tracer resets the peak at every line
        finally:
            report = tracer.stop("_small_work")
    finally:
        session = outer.stop()
    assert report.target == "_small_work"
    assert session.peak_traced_growth >= 20 * MB


def test_a_profiler_inside_a_traced_line_keeps_the_line_tracers_peak() -> None:
    # Library code (not traced line by line): its whole call is one window of the
    # calling line, in which a profiler starts and resets the peak for itself.
    namespace: dict[str, object] = {"Profiler": Profiler, "MB": MB}
    library = """
def spike_then_profile():
    scratch = bytearray(20 * MB)
    del scratch
    inner = Profiler("inner", interval=1).start()
    inner.stop()
"""
    exec(compile(library, "<library>", "exec"), namespace)
    call = namespace["spike_then_profile"]

    def traced() -> None:
        call()  # type: ignore[operator]

    tracer = LineTracer(is_user=lambda f: f == __file__)
    tracer.start()
    try:
        traced()
    finally:
        report = tracer.stop("traced")
    assert report.peak >= 20 * MB
    line = max(report.lines, key=lambda s: s.allocated)
    assert line.allocated >= 20 * MB


def test_watches_of_one_source_only() -> None:
    tracemalloc.start()
    try:
        a = peaks.PeakWatch()
        block = bytearray(5 * MB)
        del block
        b = peaks.PeakWatch()
        b.restart()
        assert a.peak() >= 5 * MB and a.carried
        assert b.peak() < 1 * MB and not b.carried
        a.close()
        b.close()
    finally:
        tracemalloc.stop()
