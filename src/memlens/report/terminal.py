"""The terminal face: a session's summary, memory chart and top allocation sites.

Rendered with rich; when the output is not a terminal rich drops colours, so the
same text lands cleanly in files and CI logs.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from memlens.core.session import Session
from memlens.core.units import format_bytes, format_duration
from memlens.report.common import bucket_max, growth_rate, memory_lines, short_path, status_style
from memlens.report.safe import plain, printable

_BLOCKS = " ▁▂▃▄▅▆▇█"


def render_terminal(session: Session, console: Console | None = None, *, top: int = 10) -> None:
    """Print the full summary of ``session`` to ``console`` (stdout by default)."""
    console = console or Console()
    console.print(session_summary(session, width=console.width, top=top))


def render_text(session: Session, *, width: int = 100, top: int = 10) -> str:
    """The same summary as plain text (no colours), e.g. for ``report --format text``."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    render_terminal(session, console, top=top)
    return buffer.getvalue()


def session_summary(session: Session, *, width: int = 100, top: int = 10) -> RenderableType:
    """Everything the terminal face shows, as one rich renderable."""
    doctor = session.analyses.get("doctor") if session.analyses else None
    if session.kind == "doctor" and isinstance(doctor, dict):
        # A stored diagnosis reads back as the doctor printed it.
        from memlens.report.doctor_text import stored_renderable

        return Group(_header(session), Text(""), stored_renderable(doctor))
    parts: list[RenderableType] = [_header(session), _figures(session)]
    chart = memory_chart(session, width=max(30, min(width, 120) - 14))
    if chart is not None:
        parts.append(chart)
    if session.top_sites:
        parts.append(_sites_table(session, top))
    if session.components:
        parts.append(_components_table(session))
    if session.gc:
        parts.append(_gc_table(session))
    frag = session.analyses.get("fragmentation")
    if isinstance(frag, dict) and frag.get("verdict"):
        parts.append(Text(f"Memory: {frag['verdict']} — {frag.get('reason', '')}"))
    if session.analyses:
        names = ", ".join(sorted(session.analyses))
        parts.append(Text(f"Analyses attached: {names} (see the HTML report)", style="dim"))
    # A blank line between blocks keeps the summary readable in a scrolling log.
    spaced: list[RenderableType] = []
    for part in parts:
        if spaced:
            spaced.append(Text(""))
        spaced.append(part)
    return Group(*spaced)


def _header(session: Session) -> Text:
    text = Text()
    text.append("memlens ", style="bold")
    text.append(printable(session.name, one_line=True), style="bold cyan")
    text.append(f"  [{printable(session.id, one_line=True)}]  ", style="dim")
    text.append(
        printable(session.status, one_line=True), style=f"bold {status_style(session.status)}"
    )
    if session.exit_code not in (None, 0):
        text.append(f"  exit code {session.exit_code}", style="red")
    if session.error:
        text.append(f"\n  {printable(session.error)}", style="red")
    return text


def _figures(session: Session) -> Table:
    grid = Table.grid(padding=(0, 2))
    for _ in range(4):
        grid.add_column()
    rate = growth_rate(session)
    growth = format_bytes(session.growth, signed=True)
    if rate is not None:
        growth += f" ({format_bytes(rate, signed=True)}/min)"
    samples = session.series.count
    grid.add_row(
        "Duration",
        format_duration(session.duration),
        "Samples",
        f"{samples} every {format_duration(session.interval)}",
    )
    grid.add_row(
        "Peak RSS", format_bytes(session.peak_rss), "Start RSS", format_bytes(session.start_rss)
    )
    grid.add_row("Final RSS", format_bytes(session.final_rss), "Growth", growth)
    if session.traced:
        grid.add_row(
            "Peak traced",
            format_bytes(session.peak_traced)
            + (
                f" (+{format_bytes(session.peak_traced_growth)} over the start)"
                if session.start_traced
                else ""
            ),
            "Final traced",
            f"{format_bytes(session.final_traced)} (depth {session.trace_depth})",
        )
    elif session.tags.get("allocation_sites"):
        grid.add_row("Allocation sites", session.tags["allocation_sites"], "", "")
        if session.peak_traced:
            grid.add_row(
                "Peak sampled",
                f"~{format_bytes(session.peak_traced)}",
                "Final sampled",
                f"~{format_bytes(session.final_traced)}",
            )
    else:
        # only `memlens run --no-trace` turns tracing off by a flag; a monitor or a
        # profile without tracemalloc simply did not trace
        how = " (--no-trace)" if session.kind == "run" else ""
        grid.add_row("Tracing", f"off{how}", "", "")
    return grid


def memory_chart(session: Session, *, width: int = 80, height: int = 8) -> Text | None:
    """A block chart of the first memory field (RSS) over the session, or ``None``."""
    lines = memory_lines(session)
    if not lines:
        return None
    line = lines[0]
    rows = block_chart(line.values, width=width, height=height)
    values = line.values
    lo, hi = min(values), max(values)
    label_width = max(len(format_bytes(hi)), len(format_bytes(lo)))
    text = Text(f"{line.label} over time\n", style="bold")
    for i, row in enumerate(rows):
        label = format_bytes(hi) if i == 0 else format_bytes(lo) if i == len(rows) - 1 else ""
        text.append(f"{label:>{label_width}} ┤", style="dim")
        text.append(row + "\n", style="cyan")
    axis_left = "0 s"
    axis_right = format_duration(max(session.duration, line.points[-1][0]))
    used = len(rows[0]) if rows else 0
    gap = max(1, used - len(axis_left) - len(axis_right))
    text.append(" " * (label_width + 2) + axis_left + " " * gap + axis_right, style="dim")
    return text


def block_chart(values: Sequence[float], *, width: int = 80, height: int = 8) -> list[str]:
    """Rows (top first) of a column chart drawn with eighth blocks.

    The vertical axis spans the values' own min..max so that growth of a few
    percent is visible; a flat series draws as a one-eighth baseline.
    """
    columns = bucket_max(values, width)
    if not columns:
        return []
    lo, hi = min(columns), max(columns)
    span = hi - lo
    levels = []
    for v in columns:
        # At least one eighth, so every column shows where the baseline is.
        level = 1 if span == 0 else 1 + round((v - lo) / span * (height * 8 - 1))
        levels.append(level)
    rows = []
    for r in range(height):
        base = (height - 1 - r) * 8
        rows.append("".join(_BLOCKS[max(0, min(8, level - base))] for level in levels))
    return rows


def _sites_table(session: Session, top: int) -> Table:
    sites = sorted(session.top_sites, key=lambda s: s.size, reverse=True)[:top]
    table = Table(title=f"Top {len(sites)} allocation sites (live at end)", title_justify="left")
    table.add_column("#", justify="right", style="dim")
    table.add_column("file:line", overflow="fold", min_width=24)
    table.add_column("function", overflow="ellipsis", no_wrap=True, max_width=18)
    table.add_column("size", justify="right")
    table.add_column("count", justify="right")
    table.add_column("growth", justify="right")
    table.add_column("component")
    for rank, site in enumerate(sites, 1):
        table.add_row(
            str(rank),
            plain(f"{short_path(site.filename)}:{site.lineno}"),
            plain(site.function),
            format_bytes(site.size),
            f"{site.count:,}",
            format_bytes(site.size_diff, signed=True),
            plain(site.component or "-"),
        )
    return table


def _components_table(session: Session) -> Table:
    table = Table(title="Components", title_justify="left")
    table.add_column("component")
    table.add_column("current", justify="right")
    table.add_column("peak", justify="right")
    table.add_column("growth", justify="right")
    table.add_column("blocks", justify="right")
    for comp in sorted(session.components, key=lambda c: c.current, reverse=True):
        table.add_row(
            plain(comp.name),
            format_bytes(comp.current),
            format_bytes(comp.peak),
            format_bytes(comp.growth, signed=True),
            f"{comp.count:,}",
        )
    return table


def _gc_table(session: Session) -> Table:
    table = Table(title="Garbage collector", title_justify="left")
    table.add_column("generation", justify="right")
    table.add_column("collections", justify="right")
    table.add_column("collected", justify="right")
    table.add_column("uncollectable", justify="right")
    table.add_column("pause total", justify="right")
    table.add_column("pause max", justify="right")
    for gen in session.gc:
        table.add_row(
            str(gen.generation),
            f"{gen.collections:,}",
            f"{gen.collected:,}",
            f"{gen.uncollectable:,}",
            format_duration(gen.pause_total) if gen.pause_total else "0",
            format_duration(gen.pause_max) if gen.pause_max else "0",
        )
    return table
