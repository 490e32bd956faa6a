"""Terminal report of a leak diagnosis, in the style of the doctor's issue::

LEAK  app/cache.py:53  growing collection  +2.0 KiB per call (…)
  allocated at   cache.py:53 in _store  ← _consolidate:41 ← handle:18
  held by        module app.cache → global _cache (dict, 12,034 entries) → …
  why            entries are added on every call and never removed
  fix (5 min)    bound it: functools.lru_cache(maxsize=1000)     frees ≈ 19 MiB
  or             remove entries when done · hold values weakly
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console, Group
from rich.text import Text

from memlens.core.units import format_bytes, format_duration
from memlens.heap.doctor.diagnosis import CATEGORIES, LEAK, NO_LEAK, Diagnosis, Finding

_LABEL = 15  # width of the left column


def _short_frame(text: str, first: bool) -> str:
    # "pkg/file.py:41 in fn" -> "fn:41" after the first frame, as in the issue.
    if first:
        return text
    loc, _, fn = text.partition(" in ")
    line = loc.rsplit(":", 1)[-1]
    return f"{fn or loc}:{line}"


def _row(label: str, body: Text | str, style: str = "") -> Text:
    out = Text("  " + label.ljust(_LABEL), style="dim")
    out.append_text(body if isinstance(body, Text) else Text(body, style=style))
    return out


def _path_text(f: Finding) -> str:
    if not f.path:
        return f.root or "unknown root"
    parts = []
    for i, hop in enumerate(f.path):
        if i == 0:
            parts.append(hop.label)
            continue
        label = hop.label
        if "entries" in hop.detail:
            label += f" ({hop.detail})"
        elif i == len(f.path) - 1:
            label += f" {hop.type_name.rsplit('.', 1)[-1]}"
        parts.append(label)
    return " → ".join(parts)


def finding_renderable(f: Finding, diag: Diagnosis) -> Group:
    """The block for one finding."""
    head = Text()
    head.append("LEAK", style="bold red")
    head.append(f"  {f.site}  ", style="bold")
    head.append(CATEGORIES.get(f.category, f.category), style="yellow")
    rate = format_bytes(f.bytes_per_iteration, signed=True)
    head.append(f"  {rate} per call")
    if diag.rss_start and diag.rss_end:
        head.append(
            f" ({format_bytes(diag.rss_start)} → {format_bytes(diag.rss_end)} "
            f"over {diag.iterations} runs)",
            style="dim",
        )
    rows: list[Text] = [head]
    if f.stack:
        chain = "  ← ".join(_short_frame(s, i == 0) for i, s in enumerate(f.stack))
        rows.append(_row("allocated at", chain))
    if f.source:
        rows.append(_row("source", f.source, "cyan"))
    per_obj = (
        f" · {f.objects_per_iteration:.2g} objects per call" if f.objects_per_iteration else ""
    )
    rows.append(_row("held by", _path_text(f) + per_obj))
    if f.library:
        rows.append(_row("library", f"{f.library}, via {f.public_call or 'a library call'}"))
    rows.append(_row("why", f.why))
    if f.remedies:
        top = f.remedies[0]
        body = Text(f"{top.title}: {top.snippet.splitlines()[0]}")
        if top.frees_bytes:
            body.append(
                f"     frees ≈ {format_bytes(top.frees_bytes)} per {diag.horizon:,} calls",
                style="green",
            )
        rows.append(_row(f"fix ({top.effort})", body))
        rest = " · ".join(r.title for r in f.remedies[1:])
        if rest:
            rows.append(_row("or", rest))
    return Group(*rows)


def renderable(diag: Diagnosis) -> Group:
    """The whole report as a rich renderable."""
    parts: list[Any] = []
    for f in diag.findings:
        parts.append(finding_renderable(f, diag))
        parts.append(Text(""))
    summary = Text()
    if diag.verdict == LEAK:
        summary.append(f"{len(diag.findings)} leak(s)", style="bold red")
    elif diag.verdict == NO_LEAK:
        summary.append("NO LEAK", style="bold green")
    else:
        summary.append("INCONCLUSIVE", style="bold yellow")
    summary.append(f"  {diag.target}", style="bold")
    summary.append(
        f"  {diag.iterations} iterations ({diag.warmup} warm-up, {diag.checkpoints} checkpoints)"
        f" in {format_duration(diag.duration)}",
        style="dim",
    )
    parts.append(summary)
    if diag.reason and diag.verdict != LEAK:
        parts.append(Text("  " + diag.reason))
    for note in diag.notes:
        parts.append(Text("  note: " + note, style="dim"))
    return Group(*parts)


def render(diag: Diagnosis | dict[str, Any], width: int = 120, color: bool = False) -> str:
    """Render to a string (ANSI colours only when ``color``)."""
    if isinstance(diag, dict):
        diag = Diagnosis.from_dict(diag)
    console = Console(
        width=width,
        record=True,
        force_terminal=color,
        color_system="auto" if color else None,
        file=io.StringIO(),
    )
    console.print(renderable(diag))
    return console.export_text(styles=color)


def print_report(diag: Diagnosis, console: Console | None = None) -> None:
    """Print to the terminal (or ``console``)."""
    (console or Console()).print(renderable(diag))
