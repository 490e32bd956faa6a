"""``@memlens.lines``: a line-by-line memory listing of every call of a function."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])


@overload
def lines(fn: F) -> F: ...
@overload
def lines(fn: None = None, *, stream: Any = None) -> Callable[[F], F]: ...


def lines(fn: Any = None, *, stream: Any = None) -> Any:
    """Trace each call of ``fn`` line by line and print the listing to ``stream``
    (stderr by default) when it returns; the last report is kept as
    ``fn.memlens_lines`` (a :class:`~memlens.heap.lines.LineReport`).

    Only ``fn``'s own file is listed. Exceptions propagate unchanged.
    """
    if fn is None:
        return lambda f: lines(f, stream=stream)

    from memlens.heap.lines import LineTracer

    filename = fn.__code__.co_filename

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from memlens.report.deepdive_text import render

        tracer = LineTracer(is_user=lambda f: f == filename)
        tracer.start()
        error = None
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            report = tracer.stop(getattr(fn, "__qualname__", repr(fn)), error)
            wrapper.memlens_lines = report  # type: ignore[attr-defined]
            out = stream if stream is not None else sys.stderr
            out.write(render("lines", report.to_dict()))

    return wrapper
