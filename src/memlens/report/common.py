"""Facts every report face shows, computed once from a Session.

Faces only format: this module picks which memory fields to plot, thins long
series for drawing, and shortens file names, so the terminal, HTML and any later
face agree on what a session says.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from memlens.core.session import Session

# Fields plotted on memory charts, in legend order, with a human label.
MEMORY_FIELDS: tuple[tuple[str, str], ...] = (
    ("rss", "RSS"),
    ("uss", "USS"),
    ("pss", "PSS"),
    ("traced", "Python heap (traced)"),
    ("swap", "swap"),
)


@dataclass(frozen=True)
class Line:
    """One field to draw: ``points`` are ``(t, value)`` pairs, oldest first."""

    field: str
    label: str
    points: list[tuple[float, float]]

    @property
    def values(self) -> list[float]:
        return [v for _, v in self.points]


def memory_lines(session: Session, max_points: int = 1500) -> list[Line]:
    """The memory fields a session recorded, each thinned to about ``max_points``.

    Older history that the series keeps only as aggregates contributes its window
    means, so a long run still draws from start to end.
    """
    lines = []
    for field, label in MEMORY_FIELDS:
        if field not in session.series.fields:
            continue
        points = [(a.start, a.mean) for a in session.series.points(field)]
        points = [(t, v) for t, v in points if math.isfinite(v)]
        # A field that is zero throughout (swap, usually) is noise on a chart.
        if not points or not any(v for _, v in points):
            continue
        lines.append(Line(field, label, thin(points, max_points)))
    return lines


def thin(points: Sequence[tuple[float, float]], max_points: int) -> list[tuple[float, float]]:
    """Min/max decimation: keep each bucket's lowest and highest point, in order.

    Unlike averaging, this keeps short peaks visible, which is what a memory
    chart is for.
    """
    if len(points) <= max_points or max_points < 4:
        return list(points)
    buckets = max_points // 2
    size = len(points) / buckets
    out: list[tuple[float, float]] = []
    for b in range(buckets):
        chunk = points[int(b * size) : int((b + 1) * size)]
        if not chunk:
            continue
        lo = min(chunk, key=lambda p: p[1])
        hi = max(chunk, key=lambda p: p[1])
        out.extend(sorted({lo, hi}))
    if out[-1] != points[-1]:
        out.append(points[-1])
    return out


def bucket_max(values: Sequence[float], width: int) -> list[float]:
    """Resample ``values`` to ``width`` columns, each the maximum of its slice."""
    if not values or width <= 0:
        return []
    if len(values) <= width:
        return list(values)
    size = len(values) / width
    return [
        max(values[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)])
        for i in range(width)
    ]


def short_path(filename: str, cwd: str | None = None) -> str:
    """A file name as people want to read it: relative to ``cwd`` when inside it,
    else trimmed to the part after ``site-packages``/``lib/pythonX.Y``."""
    cwd = cwd if cwd is not None else os.getcwd()
    if filename.startswith(cwd + os.sep):
        return filename[len(cwd) + 1 :]
    for marker in ("site-packages" + os.sep, "dist-packages" + os.sep):
        idx = filename.rfind(marker)
        if idx >= 0:
            return filename[idx + len(marker) :]
    # The standard library: "…/lib/python3.11/json/decoder.py" -> "json/decoder.py".
    stdlib = re.search(r"[/\\]lib[/\\]python3\.\d+[/\\]", filename)
    if stdlib:
        return filename[stdlib.end() :]
    parts = filename.split(os.sep)
    return os.sep.join(parts[-3:]) if len(parts) > 3 else filename


def growth_rate(session: Session) -> float | None:
    """RSS growth in bytes per minute, or ``None`` for runs too short to say."""
    if session.duration < 1.0:
        return None
    return session.growth / session.duration * 60.0


def status_style(status: str) -> str:
    """A rich style / CSS class for a session status."""
    return {"completed": "green", "failed": "red", "interrupted": "yellow"}.get(status, "cyan")
