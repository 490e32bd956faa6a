"""The doctor's Python API: ``doctor()``, ``check()`` and ``watch()``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from types import TracebackType

from memlens.core.errors import MemlensError, TargetError
from memlens.heap.doctor.analyze import apply_native_site, attribute_native, diagnose
from memlens.heap.doctor.diagnosis import LEAK, Diagnosis
from memlens.heap.doctor.iterations import Engine, Options
from memlens.heap.doctor.shallow import run_shallow
from memlens.heap.doctor.sites import CodeMap
from memlens.heap.doctor.targets import as_step


class LeakFound(MemlensError):
    """Raised by :func:`check` when the doctor finds a leak; carries the diagnosis."""

    exit_code = 1

    def __init__(self, diagnosis: Diagnosis) -> None:
        first = diagnosis.findings[0] if diagnosis.findings else None
        where = f" at {first.site} held by {first.root or 'unknown'}" if first else ""
        super().__init__(f"leak found{where}")
        self.diagnosis = diagnosis


def _options(max_iterations: int, budget: float, warmup: int | None, **extra: object) -> Options:
    opts = Options(max_iterations=max_iterations, budget=budget, warmup=warmup)
    for key, value in extra.items():
        setattr(opts, key, value)
    return opts


def _describe(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def doctor(
    step: Callable[..., object],
    setup: Callable[[], object] | None = None,
    teardown: Callable[[], object] | None = None,
    *,
    max_iterations: int = 5000,
    budget: float = 20.0,
    warmup: int | None = None,
    name: str | None = None,
    user_roots: Iterable[str] = (),
    **options: object,
) -> Diagnosis:
    """Repeat ``step(i)`` and diagnose the memory it leaks.

    ``step`` may take the iteration number or nothing. The doctor warms up, then
    takes checkpoints until it is confident (or ``max_iterations``/``budget``
    seconds run out) and returns a :class:`Diagnosis` whose ``verdict`` is
    ``"leak"``, ``"no leak"`` or ``"inconclusive"``. A step that raises ends the
    diagnosis with :class:`~memlens.core.errors.TargetError`.
    """
    fn = as_step(step)
    label = name or getattr(step, "__qualname__", None) or repr(step)
    engine = Engine(CodeMap(user_roots), _options(max_iterations, budget, warmup, **options))
    started = time.perf_counter()
    engine.begin()
    try:
        if setup is not None:
            try:
                setup()
            except Exception as exc:
                raise TargetError(f"setup raised: {_describe(exc)}") from exc
        i = 0
        while True:
            try:
                fn(i)
            except Exception as exc:
                raise TargetError(f"step raised at iteration {i}: {_describe(exc)}") from exc
            i += 1
            if engine.after_iteration():
                break
        # Native growth is charged to a line by re-running the step under a line
        # tracer, on this thread (thread-locals, event loops stay the same).
        try:
            native_site = attribute_native(engine, fn)
        except Exception as exc:
            raise TargetError(
                f"step raised while attributing native growth: {_describe(exc)}"
            ) from exc
        result = run_shallow(diagnose, engine, label)
        if native_site is not None:
            apply_native_site(result, engine, native_site)
    finally:
        engine.end()
        if teardown is not None:
            try:
                teardown()
            except Exception as exc:  # noqa: BLE001 - report, but keep the diagnosis
                raise TargetError(f"teardown raised: {_describe(exc)}") from exc
    result.duration = time.perf_counter() - started
    return result


def check(step: Callable[..., object], **kwargs: object) -> Diagnosis:
    """Like :func:`doctor`, but raise :class:`LeakFound` when the verdict is a leak."""
    result = doctor(step, **kwargs)  # type: ignore[arg-type]
    if result.verdict == LEAK:
        raise LeakFound(result)
    return result


class Watch:
    """Diagnose a block of code run repeatedly inside a running program.

    Each ``with w:`` block is one iteration. Stop when :attr:`done` is true (or any
    time) and read :attr:`diagnosis`. Native growth is measured but cannot be
    attributed to a line in this form (the doctor cannot re-run the block).
    """

    def __init__(
        self,
        *,
        max_iterations: int = 5000,
        budget: float = 20.0,
        warmup: int | None = None,
        name: str = "watched block",
        user_roots: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.engine = Engine(CodeMap(user_roots), _options(max_iterations, budget, warmup))
        self._started = False
        self._t0 = 0.0
        self._diagnosis: Diagnosis | None = None

    def __enter__(self) -> Watch:
        if not self._started:
            self._started = True
            self._t0 = time.perf_counter()
            self.engine.begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and not self.engine.done:
            self.engine.after_iteration()

    @property
    def done(self) -> bool:
        """True once the doctor has a confident verdict or its budget ran out."""
        return self.engine.done

    @property
    def iterations(self) -> int:
        return self.engine.iterations

    @property
    def diagnosis(self) -> Diagnosis:
        """The diagnosis so far (computed once, when first read after the run)."""
        if self._diagnosis is None:
            if not self.engine.done:
                self.engine._finish("stopped by caller")
            self._diagnosis = run_shallow(diagnose, self.engine, self.name, None)
            self._diagnosis.duration = time.perf_counter() - self._t0
            self.engine.end()
        return self._diagnosis


def watch(**kwargs: object) -> Watch:
    """Create a :class:`Watch` (see there); keyword arguments as for :func:`doctor`."""
    return Watch(**kwargs)  # type: ignore[arg-type]
