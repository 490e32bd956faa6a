"""Terminal report of a leak diagnosis, in the style of the doctor's issue.

Each finding is the shared block of :mod:`memlens.report.findings_text` with the
doctor's words ("LEAK", "per call", "frees ≈ X per N calls"); this module adds the
summary line, the reason and the notes.
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console, Group
from rich.text import Text

from memlens.core.units import format_bytes, format_duration
from memlens.heap.doctor.diagnosis import CATEGORIES, LEAK, NO_LEAK, Diagnosis, Finding
from memlens.report.findings_text import finding_block
from memlens.report.safe import printable


def finding_renderable(f: Finding, diag: Diagnosis) -> Group:
    """The block for one finding (the shared block, with the doctor's words)."""
    note = ""
    if diag.rss_start and diag.rss_end:
        note = (
            f" ({format_bytes(diag.rss_start)} → {format_bytes(diag.rss_end)} "
            f"over {diag.iterations} runs)"
        )
    return finding_block(
        f,
        label="LEAK",
        labels=CATEGORIES,
        per_word="call",
        head_note=note,
        saving_note=f" per {diag.horizon:,} calls",
    )


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
    summary.append(f"  {printable(diag.target, one_line=True)}", style="bold")
    summary.append(
        f"  {diag.iterations} iterations ({diag.warmup} warm-up, {diag.checkpoints} checkpoints)"
        f" in {format_duration(diag.duration)}",
        style="dim",
    )
    parts.append(summary)
    if diag.reason and diag.verdict != LEAK:
        parts.append(Text("  " + printable(diag.reason)))
    for note in diag.notes:
        parts.append(Text("  note: " + printable(note), style="dim"))
    return Group(*parts)


def stored_renderable(data: dict[str, Any]) -> Group:
    """The report of a diagnosis stored in a session (``analyses["doctor"]``)."""
    return renderable(Diagnosis.from_dict(data))


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
