"""Native growth, pinned to a line: re-run the step under a line tracer.

Growth outside Python objects (C extensions, the allocator) has no tracemalloc site;
when the doctor sees it, it re-runs the step with a line tracer that reads the
allocator around every line, and charges the native finding to the line found.
"""

from __future__ import annotations

import functools
import tracemalloc
from collections.abc import Callable

from memlens.core.units import format_bytes
from memlens.heap.doctor import growth
from memlens.heap.doctor.diagnosis import LEAK, NO_LEAK, Diagnosis, Finding
from memlens.heap.doctor.iterations import Engine
from memlens.heap.doctor.native import LineAttributor, native_reader
from memlens.heap.doctor.sites import Frame, function_at, short_path, source_line, user_stack

Attribution = tuple[Frame, int, list[Frame]]

# glibc's per-thread cache (tcache) keeps up to 7 freed chunks of each size, and
# mallinfo2 counts them as in use: the first calls after something freed chunks of
# the leak's size take them from the cache and move no figure (a 256 B ``malloc``
# then showed a sixth of its bytes). Settling for more calls than the cache holds
# empties it, so every call of the recorded runs is seen.
TCACHE_COUNT = 7
SETTLE = TCACHE_COUNT + 1


def _untraced_reader() -> Callable[[], tuple[int, int]]:
    """Read ``(raw, untraced)``: allocator bytes in use (less tracemalloc's own tables)
    and the same minus everything tracemalloc traces (Python objects)."""
    base = native_reader()
    if not tracemalloc.is_tracing():
        return lambda: (base(), base())
    traced = tracemalloc.get_traced_memory
    overhead = tracemalloc.get_tracemalloc_memory

    # tracemalloc's reported overhead, subtracted once: over-subtracting would make
    # every line that frees Python temporaries look like it allocates.
    def read() -> tuple[int, int]:
        raw = base() - overhead()
        return raw, raw - traced()[0]

    return read


def attribute_native(
    engine: Engine, step: Callable[[int], object], runs: int = 6, settle: int = SETTLE
) -> Attribution | None:
    """If native growth was seen, re-run ``step`` under a line tracer to find its line.

    ``settle`` untraced calls first let allocator caches (glibc's tcache, see
    :data:`SETTLE`) and tracemalloc's tables reach their steady state, so that only
    memory that is really kept moves the figures. Call on the thread that runs the
    step.
    """
    if not any(s.kind == "native" and s.state == growth.GROWING for s in engine.signals):
        return None
    base = engine.iterations
    for k in range(settle):
        step(base + k)
    attributor = LineAttributor(engine.code, _untraced_reader())
    attributor.run(functools.partial(step, base + settle), record=False)
    for k in range(settle + 1, settle + 1 + runs):
        attributor.run(functools.partial(step, base + k))
    return attributor.best()


def choose_native_site(
    engine: Engine, traced: object, untraced: object, runs: int = 6
) -> Attribution | None:
    """Of the two attributions (tracemalloc on, then off), the one to believe.

    Without tracemalloc the allocator figures move only for C memory and Python
    objects over 512 B, so a line that accounts for at least half the native rate
    there is the allocation site; otherwise (a big Python temporary passed to the C
    call moves the figures too) the traced run, which subtracts Python objects, says.
    """
    rate = max(
        (s.growth.rate for s in engine.signals if s.kind == "native" and s.state == growth.GROWING),
        default=0.0,
    )
    if isinstance(untraced, tuple) and rate > 0 and untraced[1] >= 0.5 * rate * runs:
        return untraced
    return traced if isinstance(traced, tuple) else None


def apply_native_site(diag: Diagnosis, engine: Engine, site: Attribution) -> None:
    """Point the native finding at the line the tracer charged (see ``attribute_native``).

    When that line is also where a Python leak with a named retainer allocates (a
    Pillow image, an lxml element kept in a list), the native bytes are what those
    Python objects hold (pixel buffers, the C document tree): one leak, reported under
    the retainer of the Python objects, with its native share added.
    """
    frame, _, frames = site
    where = f"{short_path(frame[0])}:{frame[1]}"
    for f in list(diag.findings):
        if f.category != "native":
            continue
        f.site = where
        f.function = function_at(*frame)
        f.source = source_line(*frame)
        f.stack = user_stack(frames or [frame], engine.code)
        holder = next(
            (
                o
                for o in diag.findings
                if o is not f and o.root and o.category != "native" and where in _sites(o)
            ),
            None,
        )
        if holder is not None:
            holder.bytes_per_iteration += f.bytes_per_iteration
            holder.growth_bytes += f.growth_bytes
            holder.evidence.setdefault("native_bytes_per_iteration", f.bytes_per_iteration)
            holder.why += (
                f" The objects kept also hold {format_bytes(f.bytes_per_iteration, signed=True)}"
                " per call of native memory (allocated by the library's C code on the same"
                " line), which is freed with them."
            )
            diag.findings.remove(f)
        elif where in diag.details.get("bounded_sites", {}):
            # The line fills a bounded cache (sqlite3's statement cache): the native
            # memory is what the cached objects hold, freed as they are evicted.
            bound = diag.details["bounded_sites"][where]
            diag.notes.append(
                f"{where}: {format_bytes(f.bytes_per_iteration, signed=True)} per call of "
                f"native memory, held by the objects of a bounded cache ({bound}); not a leak"
            )
            diag.findings.remove(f)
    if not diag.findings and diag.verdict == LEAK:
        diag.verdict = NO_LEAK
        diag.reason = "growth only in bounded caches that are still filling up to their bound"
    diag.findings.sort(key=lambda x: -x.bytes_per_iteration)


def _sites(f: Finding) -> list[str]:
    return [f.site, *f.related_sites]
