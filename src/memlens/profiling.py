"""Profiling sessions: ``session()``, ``@profile`` and :class:`Profiler`.

A :class:`Profiler` wires the meters to a :class:`~memlens.core.recorder.Recorder`
and, when stopped, condenses what was measured into a :class:`Session`: samples over
time, peak and growth, the top allocation sites (diff between start and end), GC
statistics and per-component memory.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from types import TracebackType
from typing import Any, TypeVar, overload

from memlens.core.clock import SYSTEM_CLOCK, Clock
from memlens.core.errors import ConfigError
from memlens.core.series import Series
from memlens.core.session import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    RUNNING,
    Metadata,
    Session,
    utc_now_iso,
)
from memlens.heap.gc_meter import GcMeter
from memlens.heap.heap_meter import DEFAULT_DEPTH, ComponentTracker, HeapMeter
from memlens.heap.process_meter import ProcessMeter
from memlens.heap.sampler import AllocationSampler

F = TypeVar("F", bound=Callable[..., Any])


def validate_interval(interval: float) -> float:
    """A sampling interval must be a finite number of seconds above zero."""
    try:
        value = float(interval)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid interval {interval!r}: expected seconds, e.g. 0.1") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"invalid interval {interval!r}: must be a number of seconds above 0")
    if value < 0.001:
        raise ConfigError(f"invalid interval {interval!r}: the smallest supported is 0.001 s")
    return value


class Profiler:
    """One profiling session over a span of code.

    Use it as a context manager (sync or async), as ``start()``/``stop()``, or via
    :func:`session` and :func:`profile`. After stopping, ``.session`` holds the
    result.
    """

    def __init__(
        self,
        name: str = "session",
        description: str = "",
        interval: float = 0.1,
        trace: bool | None = None,
        trace_depth: int | None = None,
        components: Mapping[str, str | Iterable[str]] | None = None,
        kind: str = "profile",
        top: int = 10,
        smaps_interval: float = 5.0,
        clock: Clock = SYSTEM_CLOCK,
        sample: int | None = None,
    ) -> None:
        if trace is None:
            trace = sample is None  # exact tracing unless sampling was asked for
        if sample is not None and trace:
            raise ConfigError(
                "choose one: trace=True (exact tracemalloc) or sample=BYTES (sampling tracer)"
            )
        if sample is not None and int(sample) < 0:
            raise ConfigError(
                f"invalid sample interval {sample!r}: must be at least 1 byte (0: automatic)"
            )
        self.name = name
        self.description = description
        self.interval = validate_interval(interval)
        self.trace = trace
        self.trace_depth = trace_depth or DEFAULT_DEPTH
        self.components = dict(components or {})
        self.kind = kind
        self.top = top
        self.clock = clock
        self.process = ProcessMeter(smaps_interval=smaps_interval)
        self.gc = GcMeter()
        self.heap = HeapMeter(self.trace_depth, self.components) if trace else None
        self.sample = int(sample) if sample is not None else None
        self.sampler: AllocationSampler | None = None
        if self.sample is not None:
            self.sampler = AllocationSampler(self.sample, self.trace_depth, self.components)
        self.session: Session | None = None
        self._recorder: Any = None
        self._baseline: Any = None
        self._memory_start: Any = None
        self._start_hwm = 0
        self._started = 0.0
        self._component_tracker = ComponentTracker()

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> Profiler:
        """Start measuring. Returns ``self`` for chaining."""
        from memlens.core.recorder import Recorder

        if self.session is not None and self.session.status == RUNNING:
            raise RuntimeError("this profiler is already running")
        series = Series(raw_capacity=100_000)
        self.session = Session(
            name=self.name,
            description=self.description,
            kind=self.kind,
            interval=self.interval,
            traced=self.trace,
            series=series,
            metadata=Metadata(),
        )
        first = self.process.read()
        # Program runs get the RSS breakdown (a few ms at each end); decorated
        # functions, called often, do not.
        self._memory_start = _breakdown() if self.kind == "run" else None
        self._start_hwm = first.get("peak_rss", 0)
        self.session.start_rss = first.get("rss", 0)
        self.gc.start()
        readers: list[Callable[[], Mapping[str, float]]] = [self.process.read, self.gc.read]
        if self.heap is not None:
            self.heap.start()
            self.session.trace_depth = self.heap.depth
            self._baseline = self.heap.snapshot()
            # The peak of this session, not whatever the process reached before it.
            self.heap.begin_peak()
            self.session.start_traced = self.heap.read().get("traced", 0)
            readers.append(self.heap.read)
        if self.sampler is not None:
            self.sampler.start()
            self.session.trace_depth = self.sampler.depth
            self.session.tags["allocation_sites"] = _sampled_tag(self.sampler)
        readers.append(self.process.read_detailed)
        self._started = self.clock.monotonic()
        self._recorder = Recorder(
            series,
            readers,
            self.interval,
            clock=self.clock,
            origin=self._started,
            name="memlens-session",
        )
        self._recorder.start()
        return self

    def stop(
        self,
        status: str = COMPLETED,
        error: str | None = None,
        exit_code: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Session:
        """Stop measuring and return the finished :class:`Session`.

        ``progress`` is told each long stage (the heap snapshot, grouping its traces)
        as it starts; the CLI shows it on a terminal.
        """
        say = progress or _quiet
        session = self.session
        if session is None or self._recorder is None:
            raise RuntimeError("this profiler was not started")
        if session.status != RUNNING:
            return session
        self._recorder.stop()
        last = self._recorder.sample()
        session.duration = self.clock.monotonic() - self._started
        rss = session.series.column("rss") if "rss" in session.series.fields else []
        session.final_rss = int(last.get("rss", rss[-1] if rss else 0))
        peak = int(max((v for v in rss if v == v), default=session.final_rss))
        end_hwm = int(last.get("peak_rss", 0))
        if end_hwm > self._start_hwm:
            # The kernel's high-water mark rose during the session, so the true peak
            # (even one between two samples) happened inside it.
            peak = max(peak, end_hwm)
        session.peak_rss = peak
        if self.heap is not None and self.heap.tracing:
            say("memlens: taking the heap snapshot")
            snapshot = self.heap.snapshot()
            traced = self.heap.read()
            if snapshot is not None:
                say(f"memlens: grouping {len(snapshot.traces):,} live blocks by site")
            session.final_traced = traced.get("traced", 0)
            session.peak_traced = traced.get("traced_peak", 0)
            if snapshot is not None:
                session.top_sites = self.heap.sites(snapshot, self._baseline, limit=self.top)
                if self.heap.components:
                    if self._baseline is not None:
                        self._component_tracker.update(
                            self.heap.component_totals(self._baseline), self.heap.components.names
                        )
                    self._component_tracker.update(
                        self.heap.component_totals(snapshot), self.heap.components.names
                    )
                    session.components = self._component_tracker.usage()
            self.heap.stop()
        if self.sampler is not None and self.sampler.running:
            say("memlens: reading the sampled allocation sites")
            self._finish_sampled(session, self.sampler)
        self.gc.stop()
        session.gc = self.gc.stats()
        if self.kind == "run":
            _attach_fragmentation(session, self._memory_start)
        session.status = status
        session.error = error
        session.exit_code = exit_code
        session.metadata.ended_at = utc_now_iso()
        if self._recorder.errors:
            session.tags["meter_errors"] = str(self._recorder.errors)
        self._baseline = None
        return session

    def _finish_sampled(self, session: Session, sampler: AllocationSampler) -> None:
        # Every live sample was allocated during the session: live is growth.
        sites = sampler.sites(limit=self.top)
        for site in sites:
            site.size_diff, site.count_diff = site.size, site.count
        session.top_sites = sites
        session.final_traced = sampler.live_bytes()
        # The peak during the session (live sampled bytes start at zero with it), and
        # what was live then: a temporary freed before the end shows only here.
        session.peak_traced = max(sampler.peak_bytes(), session.final_traced)
        session.analyses["peak_sites"] = [asdict(s) for s in sampler.peak_sites(limit=self.top)]
        if sampler.components:
            self._component_tracker.update(
                {n: (0, 0) for n in sampler.components.names}, sampler.components.names
            )
            self._component_tracker.update(sampler.component_totals(), sampler.components.names)
            session.components = self._component_tracker.usage()
        sampler.stop()

    # -- context managers ----------------------------------------------------------
    def __enter__(self) -> Profiler:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        status, error = _outcome(exc_type, exc)
        self.stop(status=status, error=error)

    async def __aenter__(self) -> Profiler:
        return self.start()

    async def start_profiling(
        self, session_name: str | None = None, description: str | None = None
    ) -> str:
        """``session_id = await profiler.start_profiling("ingest")``: :meth:`start` for
        async code; names the session if given and returns its id.

        Starting is quick and does not block the loop; the coroutine form lets async
        services call it like their other lifecycle hooks.
        """
        if session_name is not None:
            self.name = session_name
        if description is not None:
            self.description = description
        session = self.start().session
        assert session is not None
        return session.id

    async def stop_profiling(self, status: str = COMPLETED, error: str | None = None) -> Session:
        """``session = await profiler.stop_profiling()``: :meth:`stop` off the event loop.

        Stopping condenses the tracemalloc snapshot, which takes long on a big heap,
        so it runs in a worker thread and the loop keeps serving meanwhile.
        """
        import asyncio

        return await asyncio.to_thread(self.stop, status, error)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def _sampled_tag(sampler: AllocationSampler) -> str:
    if sampler.backend == "sampling" and sampler.auto:
        return "sampled, interval chosen from the live heap (estimates)"
    if sampler.backend == "sampling":
        return f"sampled every {sampler.interval} bytes (estimates)"
    return "exact (tracemalloc: the sampling extension is not available)"


def _outcome(
    exc_type: type[BaseException] | None, exc: BaseException | None
) -> tuple[str, str | None]:
    if exc_type is None:
        return COMPLETED, None
    if issubclass(exc_type, KeyboardInterrupt):
        return INTERRUPTED, "KeyboardInterrupt"
    return FAILED, f"{exc_type.__name__}: {exc}"


def session(
    name: str = "session",
    description: str = "",
    interval: float = 0.1,
    **options: Any,
) -> Profiler:
    """Profile a block: ``with memlens.session("ingest") as p: ...; p.session``.

    Works with ``async with`` too. ``options`` are :class:`Profiler`'s (``trace``,
    ``trace_depth``, ``components``, ``top``).
    """
    return Profiler(name=name, description=description, interval=interval, **options)


@overload
def profile(func: F) -> F: ...
@overload
def profile(
    func: None = None, *, name: str | None = None, save: bool | str = False, **options: Any
) -> Callable[[F], F]: ...


def profile(
    func: F | None = None,
    *,
    name: str | None = None,
    save: bool | str = False,
    **options: Any,
) -> F | Callable[[F], F]:
    """Decorate a sync or async function so each call runs in a profiling session.

    The latest result is on ``wrapper.last_session``. With ``save=True`` (or a
    database path) each session is also stored in the session store.
    """

    def decorate(fn: F) -> F:
        session_name = name or fn.__qualname__

        def finish(profiler: Profiler, wrapper: Any) -> None:
            wrapper.last_session = profiler.session
            if save and profiler.session is not None:
                from memlens.store import open_store

                open_store(save if isinstance(save, str) else None).save(profiler.session)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                profiler = Profiler(name=session_name, **options)
                try:
                    async with profiler:
                        return await fn(*args, **kwargs)
                finally:
                    finish(profiler, async_wrapper)

            async_wrapper.last_session = None  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            profiler = Profiler(name=session_name, **options)
            try:
                with profiler:
                    return fn(*args, **kwargs)
            finally:
                finish(profiler, wrapper)

        wrapper.last_session = None  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    if func is not None:
        return decorate(func)
    return decorate


def _breakdown() -> Any:
    """Where the resident memory is (``heap/fragmentation.py``); ``None`` if unreadable."""
    from memlens.heap import fragmentation

    try:
        return fragmentation.measure(smaps=False)
    except Exception:  # noqa: BLE001 - a missing figure must never cost the session
        return None


def _attach_fragmentation(session: Session, start: Any) -> None:
    """Attach the end-of-session breakdown with a verdict against the start."""
    end = _breakdown()
    if end is None:
        return
    from memlens.heap import fragmentation

    end.verdict, end.reason = fragmentation.verdict(end, start)
    session.analyses["fragmentation"] = end.to_dict()


def _quiet(_text: str) -> None:
    """The default ``progress``: say nothing."""
