"""A fragmentation reading in the shared findings vocabulary (``memlens.core.findings``).

:func:`~memlens.heap.fragmentation.verdict` names what holds the resident memory;
this turns a :class:`~memlens.heap.fragmentation.Breakdown` into a
:class:`~memlens.core.findings.Diagnosis` whose one finding says how much, why, and
what a fix would return, so the deep dive renders and stores like every other
analysis.
"""

from __future__ import annotations

from typing import Any

from memlens.core.findings import BYTES, Diagnosis, Finding, Remedy
from memlens.heap.fragmentation import COMPACT, FRAGMENTED, GROWING, HOLDING, Breakdown

_CATEGORY = {
    GROWING: "growing_heap",
    FRAGMENTED: "fragmented_allocator",
    HOLDING: "allocator_holding_free_memory",
}
_TRIM = Remedy(
    "return the free pages to the OS",
    "memlens trim PID    # or, in the process: ctypes.CDLL('libc.so.6').malloc_trim(0)",
    "1 min",
)


def as_diagnosis(
    now: Breakdown, before: Breakdown | None = None, target: str = ""
) -> Diagnosis[Any]:
    """The reading ``now`` (with its change since ``before``) as a diagnosis."""
    if now.verdict == COMPACT or now.verdict not in _CATEGORY:
        return Diagnosis(target=target, verdict=now.verdict, reason=now.reason)
    m = now.malloc
    if now.verdict == GROWING:
        grown = now.rss - before.rss if before is not None else 0
        finding = Finding(
            category=_CATEGORY[GROWING],
            severity="high",
            summary="live objects are accumulating",
            amount=max(grown, 0),
            why=now.reason,
            remedies=[
                Remedy(
                    "find what holds them",
                    "memlens objects PID   # largest retained sizes; memlens doctor for leaks",
                    "10 min",
                )
            ],
            evidence={"rss": now.rss},
        )
    elif now.verdict == HOLDING and m is not None:
        finding = Finding(
            category=_CATEGORY[HOLDING],
            severity="medium",
            summary="the C allocator keeps freed memory",
            amount=m.free,
            why=now.reason,
            remedies=[_with_saving(_TRIM, m.trimmable)],
            evidence={"rss": now.rss, "malloc_free": m.free, "trimmable": m.trimmable},
        )
    else:
        free = m.free if m is not None else 0
        pymalloc = now.python.free if now.python is not None else 0
        finding = Finding(
            category=_CATEGORY[FRAGMENTED],
            severity="medium",
            summary="free memory is scattered between live blocks",
            amount=max(free, pymalloc),
            why=now.reason,
            remedies=[
                _with_saving(_TRIM, m.trimmable if m is not None else 0),
                Remedy(
                    "allocate long-lived objects apart from short-lived ones, or recycle "
                    "the worker periodically",
                    effort="1 h",
                ),
            ],
            evidence={"rss": now.rss, "malloc_free": free, "pymalloc_free": pymalloc},
        )
    return Diagnosis(target=target, verdict=now.verdict, reason=now.reason, findings=[finding])


def _with_saving(remedy: Remedy, saving: int) -> Remedy:
    return Remedy(remedy.title, remedy.snippet, remedy.effort, float(saving), BYTES)
