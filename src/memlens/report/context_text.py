"""Terminal face of a context profile: a window map by layer, tables, timeline, findings."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from memlens.core.units import format_duration, format_tokens
from memlens.report.findings_text import finding_block
from memlens.report.safe import plain, printable

if TYPE_CHECKING:
    from memlens.context.diagnose import ContextDiagnosis
    from memlens.context.profile import ContextProfile

#: (colour, glyph without colour) per layer value, in window order.
LAYER_STYLE: dict[str, tuple[str, str]] = {
    "system_prompt": ("magenta", "S"),
    "tool_definitions": ("blue", "T"),
    "memory_files": ("cyan", "M"),
    "working_memory": ("yellow", "W"),
    "long_term_memory": ("green", "L"),
    "cache": ("bright_white", "C"),
    "agent_states": ("red", "A"),
    "conversation_history": ("bright_blue", "H"),
}
STATUS_STYLE = {
    "healthy": "green",
    "moderate": "yellow",
    "high": "dark_orange",
    "critical": "bold red",
}
ALERT_STYLE = {"warning": "yellow", "critical": "bold red"}
SPARK = "▁▂▃▄▅▆▇█"

GRID_COLUMNS = 50
GRID_ROWS = 8


def grid_cells(profile: ContextProfile, cells: int) -> list[str]:
    """Assign ``cells`` grid cells to layers by their share of the budget ("" = free).

    Every non-empty layer gets at least one cell; rounding uses largest remainders.
    """
    budget = max(profile.budget, profile.total_tokens, 1)
    per_cell = budget / cells
    shares = [(lp.layer.value, lp.tokens / per_cell) for lp in profile.layers.values() if lp.tokens]
    counts = {name: max(1, int(share)) for name, share in shares}
    room = cells - sum(counts.values())
    remainders = sorted(shares, key=lambda kv: kv[1] - int(kv[1]), reverse=True)
    for name, share in remainders:
        if room <= 0:
            break
        if share - int(share) >= 0.5 or profile.total_tokens >= budget:
            counts[name] += 1
            room -= 1
    result: list[str] = []
    for name, _ in shares:
        result.extend([name] * counts[name])
    result = result[:cells]
    return result + [""] * (cells - len(result))


def cell_tokens(profile: ContextProfile) -> float:
    """Tokens per map cell: the same scale as the grid (and the HTML page) uses."""
    return max(profile.budget, profile.total_tokens, 1) / (GRID_COLUMNS * GRID_ROWS)


def _count(n: int, noun: str) -> str:
    """``1 turn``, ``2 turns``."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _grid(profile: ContextProfile, color: bool) -> Text:
    cells = grid_cells(profile, GRID_COLUMNS * GRID_ROWS)
    compact_cell = None
    if profile.compaction_point and profile.compaction_point < profile.budget:
        compact_cell = int(profile.compaction_point / profile.budget * len(cells))
    text = Text()
    for index, name in enumerate(cells):
        if index and index % GRID_COLUMNS == 0:
            text.append("\n")
        if name:
            colour, glyph = LAYER_STYLE[name]
            text.append("█" if color else glyph, style=colour if color else "")
        elif compact_cell is not None and index >= compact_cell:
            text.append("░" if color else "x", style="dim red" if color else "")
        else:
            text.append("·", style="dim")
    return text


def _legend(profile: ContextProfile, color: bool) -> Text:
    legend = Text()
    for lp in profile.layers.values():
        if not lp.tokens:
            continue
        colour, glyph = LAYER_STYLE[lp.layer.value]
        legend.append("█ " if color else f"{glyph} ", style=colour if color else "")
        legend.append(f"{lp.layer.label} {format_tokens(lp.tokens)}   ")
    legend.append("· free", style="dim")
    if profile.compaction_point and profile.compaction_point < profile.budget:
        legend.append("   ░ past auto-compaction" if color else "   x past auto-compaction")
    return legend


def sparkline(values: list[int], width: int = 60) -> str:
    """A one-line chart of ``values`` (the last ``width`` of them)."""
    values = values[-width:]
    if not values:
        return ""
    top = max(values) or 1
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1)))] for v in values)


def build(
    profile: ContextProfile,
    diagnosis: ContextDiagnosis | None = None,
    *,
    top: int = 10,
    color: bool = True,
) -> RenderableType:
    """The whole report as one rich renderable."""
    status = profile.status
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    model = profile.model.name if profile.model else "unknown model"
    head.add_row("source", plain(f"{profile.source}  [{profile.format}]"))
    head.add_row(
        "model",
        plain(f"{model}, budget {format_tokens(profile.budget)} ({profile.budget_source})"),
    )
    head.add_row("counting", plain(profile.count_label))
    head.add_row(
        "status",
        Text(
            f"{status.upper()}  {profile.utilization:.1%} used, "
            f"{format_tokens(profile.total_tokens)} of "
            f"{format_tokens(profile.budget)}, "
            f"{format_tokens(max(profile.available_tokens, 0))} available",
            style=STATUS_STYLE[status] if color else "",
        ),
    )
    head.add_row("largest", plain(profile.largest_component.label))
    if profile.compaction_point:
        head.add_row(
            "compaction",
            plain(
                f"at {format_tokens(profile.compaction_point)} ({profile.compaction_point_source})"
            ),
        )
    profiled = format_duration(profile.duration_seconds)
    if profile.encoding_load_seconds > 0:
        # a one-off per process: shown apart so it is not mistaken for profiling cost
        profiled += f" (+ {format_duration(profile.encoding_load_seconds)} loading the encoding)"
    head.add_row("profiled in", profiled)
    parts: list[RenderableType] = [
        Panel(head, title="memlens context", expand=False),
        Panel(
            Group(_grid(profile, color), Text(""), _legend(profile, color)),
            title=f"context window map (1 cell ≈ {format_tokens(cell_tokens(profile))})",
            expand=False,
        ),
    ]
    layers = Table(title="layers", title_justify="left")
    layers.add_column("layer")
    layers.add_column("tokens", justify="right")
    layers.add_column("% budget", justify="right")
    layers.add_column("items", justify="right")
    layers.add_column("breakdown")
    for lp in profile.layers.values():
        parts_txt = ", ".join(
            f"{k} {format_tokens(v)}" for k, v in list(lp.breakdown.items())[:4] if v
        )
        layers.add_row(
            lp.layer.label, f"{lp.tokens:,}", f"{lp.share:.1%}", str(lp.items), plain(parts_txt)
        )
    layers.add_row(
        "total",
        f"{profile.total_tokens:,}",
        f"{profile.utilization:.1%}",
        str(len(profile.items)),
        "",
        style="bold",
    )
    parts.append(layers)
    items = Table(title=f"largest items (top {top})", title_justify="left")
    items.add_column("tokens", justify="right")
    items.add_column("layer")
    items.add_column("item")
    items.add_column("source")
    for item in profile.largest_items(top):
        where = item.layer.label + (f" / {item.sublayer}" if item.sublayer else "")
        items.add_row(f"{item.tokens:,}", plain(where), plain(item.label), plain(item.source))
    parts.append(items)
    if profile.usage:
        u = profile.usage
        usage = Text(
            f"API-reported context at the last call: {u.reported_context:,} tokens; "
            f"memlens estimate {u.estimated_context:,} ({u.versus}). "
            f"{u.api_calls} API calls: input {u.input_tokens:,}, output {u.output_tokens:,}, "
            f"cache read {u.cache_read_tokens:,}, cache write {u.cache_write_tokens:,}"
        )
        if u.cache_hit_rate is not None:
            usage.append(f"; cache hit rate {u.cache_hit_rate:.0%}")
        parts.append(Panel(usage, title="usage vs estimate", expand=False))
    if profile.timeline:
        p = profile.projection
        lines = Text(sparkline([t.context_tokens for t in profile.timeline]) + "\n")
        lines.append(
            f"{_count(len(profile.timeline), 'turn')}; "
            f"growth {p.growth_per_turn:+,.0f} tokens/turn; "
        )
        if p.turns_left is None:
            lines.append(f"not growing toward the {p.limit}")
        else:
            lines.append(
                f"about {p.turns_left} turn(s) left before the {p.limit} "
                f"({format_tokens(p.limit_tokens)})"
            )
        if profile.compactions:
            lines.append(f"; {len(profile.compactions)} compaction(s)")
        parts.append(Panel(lines, title="timeline (context per turn)", expand=False))
    if profile.leaks:
        leaks = Table(title="context leaks", title_justify="left")
        leaks.add_column("kind", overflow="fold", min_width=12)
        leaks.add_column("what")
        leaks.add_column("times", justify="right")
        leaks.add_column("redundant now", justify="right")
        leaks.add_column("redundant total", justify="right")
        for leak in profile.leaks[:10]:
            leaks.add_row(
                leak.kind,
                plain(leak.label),
                str(leak.occurrences),
                f"{leak.tokens_in_window:,}",
                f"{leak.total_tokens:,}",
            )
        parts.append(leaks)
    if profile.agents:
        agents = Table(title="sub-agents (their own windows)", title_justify="left")
        for col in ("agent", "tokens", "turns", "API calls", "reported", "output"):
            agents.add_column(col, justify="left" if col == "agent" else "right")
        for a in profile.agents:
            agents.add_row(
                plain(a.name),
                f"{a.tokens:,}",
                str(a.turns),
                str(a.api_calls),
                f"{a.reported_context:,}" if a.reported_context else "-",
                f"{a.output_tokens:,}" if a.api_calls else "-",
            )
        parts.append(agents)
    if diagnosis is not None and diagnosis.alerts:
        alerts = Table(title=f"alerts ({len(diagnosis.alerts)})", title_justify="left")
        alerts.add_column("severity")
        alerts.add_column("alert")
        for alert in diagnosis.alerts:
            style = ALERT_STYLE.get(alert.severity, "") if color else ""
            alerts.add_row(Text(alert.severity, style=style), plain(alert.message))
        parts.append(alerts)
    if diagnosis is not None and diagnosis.findings:
        blocks: list[RenderableType] = [
            Text(f"diagnosis ({diagnosis.severity})", style="bold" if color else "")
        ]
        for f in diagnosis.findings[:12]:
            blocks += [finding_block(f), Text("")]
        parts.append(Group(*blocks))
    if profile.warning_count:
        shown = "\n".join(printable(w, one_line=True) for w in profile.warnings[:5])
        more = profile.warning_count - min(5, len(profile.warnings))
        parts.append(
            Text(
                f"warnings ({profile.warning_count}):\n{shown}"
                + (f"\n… and {more} more" if more > 0 else ""),
                style="yellow" if color else "",
            )
        )
    return Group(*parts)


def render(
    profile: ContextProfile,
    diagnosis: ContextDiagnosis | None = None,
    *,
    console: Console | None = None,
    top: int = 10,
) -> None:
    """Print the report to ``console`` (default: stdout)."""
    console = console or Console()
    console.print(build(profile, diagnosis, top=top, color=console.color_system is not None))


def render_to_string(
    profile: ContextProfile,
    diagnosis: ContextDiagnosis | None = None,
    *,
    width: int = 120,
    top: int = 10,
) -> str:
    """The report as plain text (no colour)."""
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    render(profile, diagnosis, console=console, top=top)
    return console.export_text()
