"""Terminal text for the deep dives: census, lines, churn, slim, fragmentation."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from memlens.core.units import format_bytes, format_duration


def to_text(renderable: RenderableType, width: int | None = None, color: bool = False) -> str:
    """Render to a string; without a width, wide enough that nothing wraps mid-phrase."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width or 160,
        color_system="standard" if color else None,
        force_terminal=color,
        highlight=False,
        emoji=False,
        markup=False,
    )
    console.print(renderable)
    return buffer.getvalue()


def _table(title: str, columns: list[tuple[str, bool]]) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    for name, right in columns:
        table.add_column(name, justify="right" if right else "left", overflow="fold")
    return table


def census_view(data: dict[str, Any]) -> RenderableType:
    """The census: totals, top types, largest objects by retained size with paths."""
    from rich.console import Group

    head = Text()
    who = f"pid {data.get('pid', '?')}"
    head.append(f"memlens objects — {who}: ", style="bold")
    head.append(
        f"{data.get('objects', 0):,} objects, {format_bytes(data.get('bytes', 0))} "
        f"(shallow sizes), {data.get('type_count', 0):,} types; "
        f"census took {format_duration(float(data.get('seconds', 0.0)))}"
        f" ({'C' if data.get('engine') == 'c' else 'pure-Python'} engine)"
    )
    parts: list[RenderableType] = [head]
    attach = data.get("attach")
    if attach:
        parts.append(Text(attach.get("summary", ""), style="yellow"))
    types = _table("Types by bytes", [("type", False), ("count", True), ("bytes", True)])
    for row in data.get("types", []):
        types.add_row(Text(str(row["type"])), f"{row['count']:,}", format_bytes(row["bytes"]))
    parts.append(types)
    largest = _table(
        "Largest objects by retained size (freed with them)",
        [("retained", True), ("own", True), ("object", False), ("path from a root", False)],
    )
    for obj in data.get("largest", []):
        largest.add_row(
            format_bytes(obj["retained"]),
            format_bytes(obj["shallow"]),
            Text(str(obj["description"])),
            Text(" ".join(_join_path(obj.get("path", [])))),
        )
    parts.append(largest)
    return Group(*parts)


def _join_path(steps: list[str]) -> list[str]:
    out: list[str] = []
    for step in steps:
        if out and (step.startswith(".") or step.startswith("[")):
            out[-1] += step
        else:
            out.append(step if not out else "→ " + step)
    return out


def fragmentation_view(data: dict[str, Any]) -> RenderableType:
    """Where the resident memory is, and the verdict."""
    from rich.console import Group

    parts: list[tuple[str, int, str]] = [("RSS", data.get("rss", 0), "")]
    py, m = data.get("python"), data.get("malloc")
    if py:
        parts.append(("Python small objects (pymalloc)", py["in_use"], "live blocks"))
        arenas = f"{py['arenas']} arenas of {format_bytes(py['arena_bytes'])} in all"
        parts.append(("  free inside pymalloc arenas", py["free"], arenas))
    if data.get("traced") is not None:
        parts.append(("Python objects traced (tracemalloc)", data["traced"], ""))
    if m:
        trim = f"malloc_trim(0) would return about {format_bytes(m['trimmable'])}"
        parts.append(("C allocator in use (malloc)", m["in_use"], ""))
        parts.append(("  free but held by malloc", m["free"], trim))
    if data.get("file_backed") is not None:
        parts.append(("file-backed (code, mapped files)", data["file_backed"], ""))
    parts.append(("other (stacks, direct mmap, ...)", data.get("other", 0), ""))
    rows = _table("Resident memory", [("part", False), ("bytes", True), ("note", False)])
    for part, size, note in parts:
        rows.add_row(part, format_bytes(size), note)
    verdict = Text()
    verdict.append(f"Verdict: {data.get('verdict', '?')}", style="bold")
    if data.get("reason"):
        verdict.append(f" — {data['reason']}")
    return Group(rows, verdict)


VIEWS: dict[str, Callable[[dict[str, Any]], RenderableType]] = {
    "objects": census_view,
    "fragmentation": fragmentation_view,
}


def render(kind: str, data: dict[str, Any], width: int | None = None, color: bool = False) -> str:
    """The text report of deep dive ``kind`` for ``data``."""
    return to_text(VIEWS[kind](data), width=width, color=color)


def _header(kind: str, data: dict[str, Any], summary: str) -> list[RenderableType]:
    """``memlens KIND — target: summary``, then the target's error if it raised."""
    head = Text()
    head.append(f"memlens {kind} — {data.get('target', '')}: ", style="bold")
    head.append(summary)
    parts: list[RenderableType] = [head]
    if data.get("error"):
        parts.append(Text(f"the target raised {data['error']}", style="red"))
    return parts


def _run_summary(data: dict[str, Any]) -> str:
    return (
        f"{format_duration(float(data.get('duration', 0.0)))}, peak traced "
        f"{format_bytes(data.get('peak', 0))}, retained at the end "
        f"{format_bytes(data.get('retained', 0))}"
    )


def lines_view(data: dict[str, Any]) -> RenderableType:
    """memory_profiler-style listing: each traced function with its lines."""
    from rich.console import Group

    parts = _header("lines", data, _run_summary(data))
    for group in data.get("functions", []):
        table = _table(
            f"{group['file']} — {group['function']}",
            [
                ("line", True),
                ("hits", True),
                ("allocated", True),
                ("at peak", True),
                ("retained", True),
                ("source", False),
            ],
        )
        for row in group["lines"]:
            active = row["hits"] or row["allocated"] or row["retained"]
            table.add_row(
                str(row["line"]),
                f"{row['hits']:,}" if active else "",
                format_bytes(row["allocated"]) if row["allocated"] else "",
                format_bytes(row["at_peak"]) if row["at_peak"] else "",
                format_bytes(row["retained"]) if row["retained"] else "",
                Text(row["source"]),
            )
        parts.append(table)
    return Group(*parts)


def churn_view(data: dict[str, Any]) -> RenderableType:
    """Allocation patterns, hottest line first, with advice."""
    from rich.console import Group

    allocated = f"{format_bytes(data.get('allocated', 0))} allocated in "
    parts = _header("churn", data, allocated + _run_summary(data))
    table = _table(
        "Lines by bytes allocated per second",
        [
            ("line", False),
            ("bytes/s", True),
            ("allocs/s ≥", True),
            ("short-lived", True),
            ("lifetime", True),
            ("at peak", True),
            ("retained", True),
            ("pattern", False),
        ],
    )
    for s in data.get("sites", []):
        table.add_row(
            Text(f"{s['location']} {s['source']}"),
            format_bytes(s["bytes_per_second"]) + "/s",
            f"{s['allocating_hits_per_second']:,.0f}",
            f"{s['short_lived_share']:.0%}",
            "≤ " + format_duration(s["mean_lifetime"]),
            format_bytes(s["at_peak"]),
            format_bytes(s["retained"]),
            Text(s["pattern"]),
        )
    parts.append(table)
    for s in data.get("sites", []):
        if s["advice"]:
            parts.append(Text(f"• {s['location']} ({s['pattern']}): {s['advice']}"))
    return Group(*parts)


VIEWS["lines"] = lines_view
VIEWS["churn"] = churn_view


def slim_view(data: dict[str, Any]) -> RenderableType:
    """Recommendations, biggest measured saving first, each with its change."""
    from rich.console import Group
    from rich.padding import Padding

    recs = data.get("recommendations", [])
    parts = _header(
        "slim",
        data,
        f"{len(recs)} recommendation(s), {format_bytes(data.get('saving', 0))} "
        "saved in all (measured on the live objects)",
    )
    if not recs:
        parts.append(Text("Nothing to slim: no pattern saves 64 KiB or more."))
    for i, r in enumerate(recs, 1):
        line = Text()
        line.append(f"{i}. save {format_bytes(r['saving'])}", style="bold green")
        line.append(
            f" ({format_bytes(r['bytes_now'])} → {format_bytes(r['bytes_after'])}): {r['title']}"
        )
        parts.append(line)
        parts.append(Text(f"   at {r['where']}", style="dim"))
        parts.append(Padding(Text(r["change"]), (0, 0, 0, 6)))
    return Group(*parts)


VIEWS["slim"] = slim_view
