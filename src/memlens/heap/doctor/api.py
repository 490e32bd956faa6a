"""The doctor's Python API: ``doctor()``, ``check()`` and ``watch()``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from functools import partial
from types import TracebackType

from memlens.core.errors import MemlensError, TargetError
from memlens.heap.doctor import pool_leaks
from memlens.heap.doctor.analyze import apply_native_site, attribute_native, diagnose
from memlens.heap.doctor.diagnosis import LEAK, Diagnosis
from memlens.heap.doctor.guard import BudgetClock, Deadline, StepTimeout
from memlens.heap.doctor.iterations import Engine, Options
from memlens.heap.doctor.native_holder import Holder, apply_holder, find_holder
from memlens.heap.doctor.native_site import choose_native_site
from memlens.heap.doctor.remedies import refine
from memlens.heap.doctor.sampled import make_engine
from memlens.heap.doctor.shallow import run_shallow
from memlens.heap.doctor.sites import CodeMap
from memlens.heap.doctor.targets import EventLoop, as_call, as_step


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
    min_iterations: int = 0,
    budget: float = 20.0,
    warmup: int | None = None,
    max_memory: int | str | None = None,
    name: str | None = None,
    user_roots: Iterable[str] = (),
    progress: Callable[[Engine], None] | None = None,
    sample: bool | int | None = None,
    **options: object,
) -> Diagnosis:
    """Repeat ``step(i)`` and diagnose the memory it leaks.

    ``step`` may take the iteration number or nothing, and may be ``async def``
    (as may ``setup`` and ``teardown``): coroutines run on one event loop the doctor
    owns for the whole diagnosis. The doctor warms up, then takes checkpoints until
    it is confident (or ``max_iterations``/``budget`` seconds run out) and returns a
    :class:`Diagnosis` whose ``verdict`` is ``"leak"``, ``"no leak"`` or
    ``"inconclusive"``. ``progress`` is called with the engine after every
    checkpoint. ``max_memory`` (bytes, or a size such as ``"2 GiB"``) is the
    resident memory the steps may add; the run stops before a call that would pass
    it and decides on what it saw (the default: the smaller of 2 GiB and a quarter
    of the memory available, see :mod:`~memlens.heap.doctor.pressure`). A step that raises (anything, ``SystemExit`` included) or is still
    running well past the budget ends the diagnosis with
    :class:`~memlens.core.errors.TargetError`. ``sample`` (True, or a mean interval
    in bytes) runs the diagnosis on the sampling tracer instead of tracemalloc (see
    :mod:`~memlens.heap.doctor.sampled`).
    """
    loop = EventLoop()
    fn = as_step(step, loop=loop)
    label = name or getattr(step, "__qualname__", None) or repr(step)
    opts = _options(
        max_iterations,
        budget,
        warmup,
        min_iterations=min_iterations,
        max_memory=_size(max_memory),
        **options,
    )
    engine, sample_note = make_engine(CodeMap(user_roots), opts, progress, sample)
    pid = os.getpid()
    started = time.perf_counter()
    began = False
    try:
        run_setup = as_call(setup, loop)
        if run_setup is not None:
            _guarded(run_setup, pid, "setup raised", None)
        # The clock, tracing and the start figures begin after setup: its growth
        # is not the step's, and a slow setup does not eat the step's budget.
        engine.begin()
        began = True
        borrows = pool_leaks.start()  # pools' borrows, to name a pool leak at the end
        i = 0
        with Deadline(_hard_deadline(budget), engine.clock) as deadline:
            while True:
                deadline.armed = True
                _guarded(partial(fn, i), pid, f"step raised at iteration {i}", (i, budget))
                deadline.armed = False
                i += 1
                done = engine.after_iteration()
                borrows.after_iteration(engine)
                if done:
                    break
        engine.capture_context()
        # Native growth is charged to a line by re-running the step under a line
        # tracer, on this thread (thread-locals, event loops stay the same): once
        # while tracemalloc runs (Python temporaries can then be told apart from
        # native memory) and once after the analysis has stopped it (its own tables
        # grow with every traced temporary, noise that hides a 256 B leak).
        # Re-running a step that used up the memory allowance would pass the limit.
        rerun = not engine.memory_pressure
        with engine.exact_tracing():  # a sampled run traces this re-run exactly
            traced = _attribute(engine, fn, pid, i, budget) if rerun else None
        result = run_shallow(diagnose, engine, label)
        engine.end()
        untraced = _attribute(engine, fn, pid, i, budget) if traced is not None else None
        native_site = choose_native_site(engine, traced, untraced)
        if native_site is not None:
            apply_native_site(result, engine, native_site)
            _native_holder(result, engine, fn, pid, native_site[0], budget)
        if not rerun and any(f.category == "native" for f in result.findings):
            result.notes.append(
                "native growth was not charged to a line: re-running the step to find "
                "it would pass the memory limit"
            )
        if result.verdict == LEAK and result.reason.endswith("leak(s) with sustained growth"):
            # Native growth joined the finding that holds it: count what is left.
            result.reason = f"{len(result.findings)} leak(s) with sustained growth"
        for finding in result.findings:
            refine(finding)
        _note_no_bound(result, engine)
        pool_leaks.name_pool_leaks(result, borrows)
        engine.annotate(result)
        if sample_note:
            result.notes.append(sample_note)
    finally:
        if began:
            engine.end()
        try:
            run_teardown = as_call(teardown, loop)
            if run_teardown is not None:
                _guarded(run_teardown, pid, "teardown raised", None)
        finally:
            loop.close()
    result.duration = time.perf_counter() - started
    return result


def _size(value: int | str | None) -> int | None:
    if value is None:
        return None
    from memlens.core.units import parse_size

    return parse_size(value)


def _attribute(
    engine: Engine, fn: Callable[[int], object], pid: int, i: int, budget: float
) -> object:
    with Deadline(max(2.0, 0.5 * budget), BudgetClock()):
        return _guarded(
            lambda: attribute_native(engine, fn),
            pid,
            "step raised while attributing native growth",
            (i, budget),
        )


def _native_holder(
    result: Diagnosis,
    engine: Engine,
    fn: Callable[[int], object],
    pid: int,
    site: tuple[str, int],
    budget: float,
) -> None:
    """Native growth on a line that adds to a long-lived collection is that
    collection's growth (see ``native_holder``)."""
    if not any(f.category == "native" for f in result.findings):
        return
    start = engine.iterations + 1000  # fresh iteration numbers, past the attribution's
    with Deadline(max(2.0, 0.25 * budget), BudgetClock()):
        holder = _guarded(
            lambda: find_holder(site, fn, start),
            pid,
            "step raised while looking for what holds native growth",
            (start, budget),
        )
    if isinstance(holder, Holder):
        apply_holder(result, holder, engine.code)


def _note_no_bound(result: Diagnosis, engine: Engine) -> None:
    """Say how far a leaking collection was watched without reaching a bound."""
    if result.verdict != LEAK or not engine.growth_seen_at:
        return
    for finding in result.findings:
        sizes = [
            h.detail.rpartition(", ")[2] for h in finding.path if h.detail.endswith(" entries")
        ]
        # The growing holder is the biggest collection on the path.
        size = max(sizes, key=lambda t: int(t.split()[0].replace(",", "")), default="")
        at = f"at {size} " if size else ""
        result.notes.append(
            f"{finding.site}: still growing {at}after {result.iterations:,} calls "
            f"(first seen at {engine.growth_seen_at:,}), no bound seen"
        )


def _hard_deadline(budget: float) -> float:
    """Seconds after which a step still running is interrupted (analysis not included)."""
    return budget + max(2.0, 0.25 * budget)


def _guarded(
    call: Callable[[], object], pid: int, what: str, timing: tuple[int, float] | None
) -> object:
    """Run ``call``; any way out other than returning becomes one :class:`TargetError`.

    In a child that a step forked and that came back into the doctor, the child ends
    here, silently: only the process that started the diagnosis reports it.
    """
    try:
        value = call()
    except StepTimeout:
        if timing is None:
            raise TargetError(f"{what}: interrupted at the hard deadline") from None
        i, budget = timing
        raise TargetError(
            f"step did not return at iteration {i}: still running "
            f"{_hard_deadline(budget):g} s into a {budget:g} s budget (it hangs or blocks)"
        ) from None
    except KeyboardInterrupt:
        _leave_child(pid, 130)
        raise
    except SystemExit as exc:
        _leave_child(pid, exc.code if isinstance(exc.code, int) else 1)
        called = what.replace("raised", f"called sys.exit({exc.code!r})", 1)
        raise TargetError(f"{called}; the doctor needs a step that returns") from None
    except BaseException as exc:  # noqa: BLE001 - a custom BaseException is the user's too
        _leave_child(pid, 1)
        raise TargetError(f"{what}: {_describe(exc)}") from exc
    _leave_child(pid, 0)
    return value


def _leave_child(pid: int, code: int) -> None:
    if os.getpid() != pid:
        os._exit(code)


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
        max_memory: int | str | None = None,
        name: str = "watched block",
        user_roots: Iterable[str] = (),
    ) -> None:
        self.name = name
        opts = _options(max_iterations, budget, warmup, max_memory=_size(max_memory))
        # The block cannot be re-run for a traced look, and may be stopped at any
        # time: it is traced from the start.
        opts.untraced_watch = False
        self.engine = Engine(CodeMap(user_roots), opts)
        self._started = False
        self._t0 = 0.0
        self._diagnosis: Diagnosis | None = None
        self._borrows = pool_leaks.start()

    def __enter__(self) -> Watch:
        if not self._started:
            self._started = True
            self._t0 = time.perf_counter()
            self.engine.begin()
            self._borrows = pool_leaks.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and not self.engine.done:
            self.engine.after_iteration()
            self._borrows.after_iteration(self.engine)

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
            self.engine.capture_context()
            self._diagnosis = run_shallow(diagnose, self.engine, self.name, None)
            pool_leaks.name_pool_leaks(self._diagnosis, self._borrows)
            self._diagnosis.duration = time.perf_counter() - self._t0
            self.engine.end()
        return self._diagnosis


def watch(**kwargs: object) -> Watch:
    """Create a :class:`Watch` (see there); keyword arguments as for :func:`doctor`."""
    return Watch(**kwargs)  # type: ignore[arg-type]
