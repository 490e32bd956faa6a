"""pytest plugin: memory limits and leak checks as markers.

- ``@pytest.mark.limit_memory("24 MB")`` fails a test whose peak traced memory
  (allocated during the test, tracemalloc) exceeds the limit;
- ``@pytest.mark.limit_leaks("1 KB", iterations=None)`` repeats the test body under
  the leak doctor and fails when it leaks more than the limit per run;
- ``@pytest.mark.no_leaks`` (optionally ``no_leaks(iterations=…)``) repeats the test
  body and fails with the doctor's report on any leak.

Fixtures are set up once; only the test function's body is repeated. Only user code
counts as an allocation site, so pytest's, ``re``'s, ``logging``'s and
``linecache``'s own caches do not fail a test; bounded interpreter caches are
recognised as such.
"""

from __future__ import annotations

import inspect
import tracemalloc
from typing import Any

import pytest

from memlens.core.errors import ConfigError
from memlens.core.units import format_bytes, parse_size
from memlens.heap import peaks

_MARKERS = (
    "limit_memory(limit): fail if the test's peak traced memory exceeds limit, e.g. '24 MB'",
    "limit_leaks(limit, iterations=None): repeat the test body; fail if it leaks more than "
    "limit per run",
    "no_leaks(iterations=None): repeat the test body; fail with the leak doctor's report on a leak",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in _MARKERS:
        config.addinivalue_line("markers", line)


def _bad(name: str, message: str) -> Any:
    """Fail the test with one line about its marker (no traceback)."""
    pytest.fail(f"@pytest.mark.{name}: {message}", pytrace=False)


def _marker_args(marker: pytest.Mark, name: str) -> tuple[Any, dict[str, Any]]:
    limit = marker.args[0] if marker.args else marker.kwargs.get("limit")
    extra = {k: v for k, v in marker.kwargs.items() if k != "limit"}
    unknown = set(extra) - {"iterations", "budget"}
    if unknown:
        _bad(name, f"unknown argument(s) {', '.join(sorted(unknown))}")
    for key, convert in (("iterations", int), ("budget", float)):
        if key in extra and extra[key] is not None:
            value = extra[key]
            try:
                if isinstance(value, bool):
                    raise ValueError
                extra[key] = convert(value)
            except (TypeError, ValueError):
                _bad(name, f"invalid {key}={value!r}: expected a number")
            if extra[key] <= 0:
                _bad(name, f"invalid {key}={value!r}: expected a number above 0")
    return limit, extra


def _limit_bytes(name: str, limit: Any) -> int:
    if limit is None:
        _bad(name, f"{name} needs a limit, e.g. {name}('24 MB')")
    try:
        return parse_size(limit)
    except (ConfigError, TypeError, ValueError) as exc:
        return _bad(name, f"invalid limit {limit!r}: {exc}")


def _without_log_growth(body: Any) -> Any:
    """``body`` whose repetitions do not grow pytest's log capture.

    pytest keeps every log record of a test; repeated by the leak doctor, a test that
    logs would "leak" one record per run, charged to its own ``log.warning`` line.
    The first run's records are kept; later runs' are dropped after each run.
    """
    import logging

    from _pytest.logging import LogCaptureHandler

    marks: list[tuple[Any, int, int]] | None = None

    def run() -> Any:
        nonlocal marks
        result = body()
        handlers = [h for h in logging.getLogger().handlers if isinstance(h, LogCaptureHandler)]
        if marks is None:
            marks = [(h, len(h.records), h.stream.tell()) for h in handlers]
        else:
            for handler, count, position in marks:
                del handler.records[count:]
                handler.stream.seek(position)
                handler.stream.truncate()
        return result

    return run


def _call(pyfuncitem: pytest.Function) -> Any:
    funcargs = pyfuncitem.funcargs
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: funcargs[name] for name in names}
    return lambda: pyfuncitem.obj(**kwargs)


def _doctor(pyfuncitem: pytest.Function, iterations: int | None, budget: float | None) -> Any:
    from memlens.heap.doctor import doctor

    if inspect.iscoroutinefunction(pyfuncitem.obj):
        raise pytest.UsageError(
            f"{pyfuncitem.nodeid}: leak markers need a synchronous test function"
        )
    body = _without_log_growth(_call(pyfuncitem))
    kwargs: dict[str, Any] = {"name": pyfuncitem.nodeid}
    if iterations is not None:
        if int(iterations) < 10:
            _bad("no_leaks", f"iterations must be at least 10 (got {iterations})")
        kwargs["max_iterations"] = int(iterations)
    kwargs["budget"] = float(budget) if budget is not None else 15.0
    return doctor(lambda i: body(), **kwargs)


def _report(diag: Any) -> str:
    from memlens.report.doctor_text import render

    return render(diag, width=110)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    leaks = pyfuncitem.get_closest_marker("limit_leaks")
    no_leaks = pyfuncitem.get_closest_marker("no_leaks")
    memory = pyfuncitem.get_closest_marker("limit_memory")
    if leaks is None and no_leaks is None and memory is None:
        return None
    if memory is not None:
        _run_limit_memory(pyfuncitem, memory)
        if leaks is None and no_leaks is None:
            return True
    if leaks is not None:
        limit, extra = _marker_args(leaks, "limit_leaks")
        limit_bytes = _limit_bytes("limit_leaks", limit)
        diag = _doctor(pyfuncitem, extra.get("iterations"), extra.get("budget"))
        leaked = sum(f.bytes_per_iteration for f in diag.findings)
        if diag.verdict == "leak" and leaked > limit_bytes:
            pytest.fail(
                f"test leaks {format_bytes(leaked)} per run (limit {limit})\n" + _report(diag),
                pytrace=False,
            )
    if no_leaks is not None:
        _, extra = _marker_args(no_leaks, "no_leaks")
        diag = _doctor(pyfuncitem, extra.get("iterations"), extra.get("budget"))
        if diag.verdict == "leak":
            pytest.fail("test leaks memory\n" + _report(diag), pytrace=False)
    return True


def _run_limit_memory(pyfuncitem: pytest.Function, marker: pytest.Mark) -> None:
    limit, _ = _marker_args(marker, "limit_memory")
    limit_bytes = _limit_bytes("limit_memory", limit)
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(10)
    try:
        peaks.reset_peak()  # keeps a running profiler's or monitor's peak intact
        base = tracemalloc.get_traced_memory()[0]
        _call(pyfuncitem)()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        if started:
            tracemalloc.stop()
    if peak > limit_bytes:
        pytest.fail(
            f"test allocated {format_bytes(peak)} at peak, over the limit of {limit} "
            f"({format_bytes(limit_bytes)})",
            pytrace=False,
        )
