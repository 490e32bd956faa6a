"""The verdict of one doctor run: leak, no leak or inconclusive, and why.

Runs once, after the iterations. Too few checkpoints or no sustained growth decide
it at once; otherwise :class:`~memlens.heap.doctor.builder.FindingBuilder` turns
the growing signals into findings, and growth that only fills a bounded cache is
set aside as a note.
"""

from __future__ import annotations

from memlens.core.units import format_bytes
from memlens.heap.doctor import detect, growth
from memlens.heap.doctor.builder import FindingBuilder
from memlens.heap.doctor.diagnosis import INCONCLUSIVE, LEAK, NO_LEAK, Diagnosis, Finding
from memlens.heap.doctor.grouping import group, retainer
from memlens.heap.doctor.iterations import Engine
from memlens.heap.doctor.native_site import Attribution, apply_native_site, attribute_native
from memlens.heap.doctor.sites import format_frame, short_path


def diagnose(engine: Engine, target: str, native_site: Attribution | None = None) -> Diagnosis:
    """Build the :class:`Diagnosis` for a finished engine run."""
    opts = engine.options
    cps = engine.checkpoints
    diag = Diagnosis(
        target=target,
        verdict=NO_LEAK,
        iterations=engine.iterations,
        warmup=max(engine.warmup, 0),
        checkpoints=len(cps) + len(engine.watch_checkpoints),
        gc_enabled=engine.gc_enabled,
        budget=opts.budget,
        max_iterations=opts.max_iterations,
        horizon=opts.horizon,
        rss_start=engine.rss_start,
        rss_end=cps[-1].rss if cps else 0,
        malloc_available=engine.malloc,
    )
    if engine.watch_end:
        # Watched untraced to here; the allocation sites come from the traced look.
        diag.details["traced_look"] = {
            "from_call": engine.watch_end,
            "calls": engine.iterations - engine.watch_end,
            "every": engine.look_every,
        }
    if not engine.gc_enabled:
        diag.notes.append("the program disabled the cyclic GC: nothing was collected away")
    if engine.memory_pressure:
        _note_pressure(diag, engine)
    if len(engine.watch_checkpoints or cps) < 6:
        diag.verdict = INCONCLUSIVE
        raise_what = "--max-memory" if engine.memory_pressure else "--budget or --max-iterations"
        diag.reason = (
            f"only {len(cps)} checkpoints in {engine.iterations} iterations; raise {raise_what}"
        )
        return diag
    signals = engine.signals
    growing = [s for s in signals if s.state == growth.GROWING]
    if not growing:
        unclear = [s for s in signals if s.state == growth.UNCLEAR]
        if unclear:
            diag.verdict = INCONCLUSIVE
            s = unclear[0]
            diag.reason = (
                f"{_signal_name(s)} grew in some but not all of the last segments "
                f"after {engine.iterations} iterations ({engine.stop_reason}); "
                "run longer to tell a slow leak from a cache still filling"
            )
        else:
            diag.reason = (
                f"no sustained growth over {engine.iterations - diag.warmup} measured iterations"
            )
        return diag
    builder = FindingBuilder(engine, growing, native_site)
    findings = builder.build()
    diag.findings = []
    for f in findings:
        bound = builder.bounded.get(id(f)) or builder.user_bound.get(id(f))
        if bound:
            diag.notes.append(f"{f.site}: {bound}; not a leak")
            # Native memory charged to these lines later is what the cached objects
            # hold (see ``native_site.apply_native_site``).
            for site in (f.site, *f.related_sites):
                diag.details.setdefault("bounded_sites", {}).setdefault(site, bound)
        else:
            diag.findings.append(f)
    if findings and not diag.findings:
        diag.verdict = NO_LEAK
        diag.reason = "growth only in bounded caches that are still filling up to their bound"
        return diag
    # No leak verdict without a retention explanation: growth whose holder was not
    # found is reported as such, never as a leak with an unknown root.
    unexplained = [f for f in diag.findings if not explained(f)]
    diag.findings = [f for f in diag.findings if explained(f)]
    for f in unexplained:
        diag.notes.append(
            f"{f.site}: grows {format_bytes(f.bytes_per_iteration, signed=True)} per call, "
            "but no path from a named root to it was found"
        )
    if unexplained and not diag.findings:
        f = unexplained[0]
        diag.verdict = INCONCLUSIVE
        diag.reason = (
            f"memory allocated at {f.site} kept growing "
            f"({format_bytes(f.bytes_per_iteration, signed=True)} per call over "
            f"{engine.iterations} iterations), but nothing was found holding it: "
            "no leak is claimed without a retainer"
        )
        return diag
    through = {retainer(f) for f in diag.findings if id(f) in builder.through_growing}
    diag.findings = group(diag.findings, builder.lead)
    if engine.watch_end and through:
        # The look's rates come from a few calls, in which a collection's table may
        # not have grown at all: the leak whose holder the watch saw growing leads.
        diag.findings.sort(key=lambda f: retainer(f) not in through)
    if diag.findings and engine.window_short:
        # Growth seen at N is believed only if it still holds at widen × N: a run
        # cut short before that cannot tell a leak from a bound not yet reached.
        _cut_short(diag, engine)
        return diag
    if diag.findings:
        diag.verdict = LEAK
        diag.reason = f"{len(diag.findings)} leak(s) with sustained growth"
        if engine.memory_pressure:
            diag.reason += (
                f" until the run stopped for memory pressure after {engine.iterations:,} calls"
            )
    else:  # pragma: no cover - every growing signal yields a finding
        diag.verdict = INCONCLUSIVE
        diag.reason = "growth was detected but could not be attributed"
    return diag


def _note_pressure(diag: Diagnosis, engine: Engine) -> None:
    """Say that (and why) the run stopped before its memory limit."""
    mem = engine.memory
    diag.notes.append(mem.describe())
    diag.details["stopped"] = {
        "cause": "memory_pressure",
        "limit_bytes": mem.allowance,
        "limit_source": "max_memory" if mem.user_set else "default",
        "grown_bytes": mem.grown,
        "bytes_per_call": mem.rate,
        "calls": engine.iterations,
    }


def _cut_short(diag: Diagnosis, engine: Engine) -> None:
    first = diag.findings[0]
    seen = engine.growth_seen_at or engine.iterations
    target = int(engine.options.widen * seen)
    limit = "--max-iterations" if engine.stop_reason == "max_iterations" else "--budget"
    for f in diag.findings:
        held = f" held by {f.root}" if f.root else ""
        diag.notes.append(
            f"{f.site}: grows {format_bytes(f.bytes_per_iteration, signed=True)} per call"
            f"{held}, still growing at iteration {engine.iterations:,}"
        )
    diag.findings = []
    diag.verdict = INCONCLUSIVE
    diag.reason = (
        f"memory allocated at {first.site} was still growing after {engine.iterations:,} "
        f"iterations (first seen at {seen:,}), but the run ended ({engine.stop_reason}) "
        f"before iteration {target:,}, where a cache still filling up to a bound would "
        f"show its bound: raise {limit} to tell the two apart"
    )


def explained(f: Finding) -> bool:
    """A finding says what keeps its memory: a named root, the C allocator, the atexit
    registry, or unreachable cycles the program never collects."""
    return bool(f.root) or f.category in ("native", "gc_disabled_cycles")


def _signal_name(s: detect.Signal) -> str:
    if s.kind == "site" and isinstance(s.key, tuple):
        return f"memory allocated at {short_path(s.key[0])}:{s.key[1]}"
    if s.kind == "container":
        return f"a {s.label}"
    return s.label or s.kind


__all__ = ["Attribution", "apply_native_site", "attribute_native", "diagnose", "format_frame"]
