"""Allocation patterns per line: rates, short-lived share, peak vs live, and advice.

Reads a :class:`~memlens.heap.lines.LineReport` (tracemalloc and a line tracer; see
``heap/lines.py``). For every line it derives:

- bytes allocated per second, and executions that allocated per second (a lower bound
  on allocations per second: each such execution made at least one block);
- the **short-lived** share: bytes that did not outlive the line that made them, and
  their mean lifetime (at most one execution of the line, measured);
- **peak vs live**: what the line held when traced memory peaked, against what it
  still holds at the end.

Lines are ranked by bytes allocated per second, so the hot line of a loop whose
objects all die comes first even though nothing of it is live at the end. Each gets
the advice its pattern calls for (reuse a buffer, preallocate, stream with a
generator, join strings instead of ``+=``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from memlens.heap.lines import LineReport, LineStat

_AGGREGATE_OF_LIST = re.compile(
    r"\b(sum|max|min|any|all|sorted|set|tuple|frozenset|len|join)\s*\(\s*\[.*\bfor\b"
)
_AUG_ADD = re.compile(r"(?<![=!<>])\+=")
_APPEND = re.compile(r"\.(append|extend|insert)\(")
BIG_TEMPORARY = 64 * 1024


@dataclass
class ChurnSite:
    """One line's allocation pattern."""

    file: str
    line: int
    function: str
    source: str
    hits: int
    allocated: int
    bytes_per_second: float
    allocating_hits_per_second: float
    short_lived: int
    short_lived_share: float
    mean_lifetime: float  # seconds, upper bound for short-lived blocks
    at_peak: int
    retained: int
    pattern: str
    advice: str

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


def classify(stat: LineStat) -> tuple[str, str]:
    """``(pattern, advice)`` for one line from its figures and its source text."""
    src = stat.source.strip()
    temp = stat.temporary
    share = temp / stat.allocated if stat.allocated else 0.0
    per_hit = stat.allocated / stat.hits if stat.hits else 0
    kept = max(stat.retained, stat.at_peak, 0)
    if _AUG_ADD.search(src) and stat.hits > 1 and stat.allocated > 4 * max(kept, 1):
        return (
            "repeated concatenation",
            "each += copies the whole value so far: collect the parts in a list and "
            "''.join(parts) (or b''.join) once at the end",
        )
    if _AGGREGATE_OF_LIST.search(src) and share > 0.5:
        return (
            "list built only to be consumed",
            "pass a generator expression instead of a list comprehension "
            "(sum(x for x in ...)): items are made one at a time, the list never exists",
        )
    if share > 0.9 and per_hit >= BIG_TEMPORARY:
        return (
            "large temporary per execution",
            f"about {per_hit / 1024:,.0f} KiB is allocated and freed on every execution: "
            "allocate the buffer once outside the loop and reuse it (bytearray, "
            "memoryview, numpy out=)",
        )
    if _APPEND.search(src) and stat.hits >= 100 and 0.05 < share <= 0.9:
        return (
            "growing container",
            "the container is resized again and again as it grows: preallocate it "
            "([None] * n, array('d', bytes(8 * n))) or build it in one comprehension",
        )
    if share > 0.9 and stat.hits >= 100:
        return (
            "short-lived objects",
            "nearly everything allocated here dies at once: reuse objects across "
            "iterations, or stream the data with a generator instead of materialising it",
        )
    if kept and stat.allocated and kept >= 0.5 * stat.allocated:
        return ("kept", "most of what this line allocates stays alive: see memlens lines")
    return ("mixed", "")


def analyse(report: LineReport, top: int = 20, min_bytes: int = 1024) -> list[ChurnSite]:
    """The lines of ``report`` ranked by bytes allocated per second."""
    duration = max(report.duration, 1e-9)
    sites: list[ChurnSite] = []
    for s in report.lines:
        if s.allocated < min_bytes:
            continue
        pattern, advice = classify(s)
        temp = s.temporary
        sites.append(
            ChurnSite(
                file=s.file,
                line=s.line,
                function=s.function,
                source=s.source.strip(),
                hits=s.hits,
                allocated=s.allocated,
                bytes_per_second=s.allocated / duration,
                allocating_hits_per_second=s.allocating_hits / duration,
                short_lived=temp,
                short_lived_share=temp / s.allocated if s.allocated else 0.0,
                mean_lifetime=s.seconds / s.hits if s.hits else 0.0,
                at_peak=s.at_peak,
                retained=s.retained,
                pattern=pattern,
                advice=advice,
            )
        )
    sites.sort(key=lambda c: c.bytes_per_second, reverse=True)
    return sites[:top]


def churn_dict(report: LineReport, top: int = 20) -> dict[str, Any]:
    """Plain data for the faces: the run's totals and the ranked sites."""
    sites = analyse(report, top)
    return {
        "target": report.target,
        "duration": report.duration,
        "peak": report.peak,
        "retained": report.retained,
        "error": report.error,
        "allocated": sum(s.allocated for s in report.lines),
        "sites": [dict(asdict(c), location=c.location) for c in sites],
    }
