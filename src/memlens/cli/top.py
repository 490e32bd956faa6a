"""``memlens top URL|PID``: a live terminal view of a service's memory.

With a URL it polls the monitor's ``/debug/memory`` endpoint; with a process id it
reads the process's memory from ``/proc`` (no attach, nothing runs in the target).
When stdout is not a terminal each refresh is printed as a plain block, so a log or
a pipe sees every view.
"""

from __future__ import annotations

import os
import time
from typing import Any

import click

from memlens.core.endpoint import EndpointError, endpoint_url, get_json
from memlens.core.units import format_bytes, format_duration

SPARK = "▁▂▃▄▅▆▇█"


def fetch(url: str, token: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
    """GET the ``/debug/memory`` JSON or raise :class:`EndpointError` with one clear line."""
    return get_json(url, token, timeout, expect="readings")


def sparkline(values: list[int], width: int = 48) -> str:
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [
            min(values[int(i * step) : int((i + 1) * step)] or [values[-1]]) for i in range(width)
        ]
    lo, hi = min(values), max(values)
    span = hi - lo or 1
    return "".join(
        SPARK[min(len(SPARK) - 1, int((v - lo) / span * (len(SPARK) - 1)))] for v in values
    )


def render(data: dict[str, Any]) -> Any:
    """A rich renderable of one ``/debug/memory`` payload."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    health = data.get("health", {})
    status = health.get("status", "?")
    colour = {"ok": "green", "warning": "yellow", "critical": "red"}.get(status, "white")
    header = Text()
    header.append(f"{data.get('service', '?')}  pid {data.get('pid', '?')}  ", style="bold")
    header.append(
        f"mode {data.get('mode', '?')}  up {format_duration(float(data.get('uptime_seconds', 0)))}  "
    )
    header.append(f"health {status.upper()}", style=f"bold {colour}")
    parts: list[Any] = [header]
    for reason in health.get("reasons", []):
        parts.append(Text("  " + reason, style=colour))

    readings = data.get("readings", {})
    mem = Table(title="Memory", show_header=False, box=None, padding=(0, 2))
    for key, label in (
        ("rss", "RSS"),
        ("peak_rss", "peak RSS"),
        ("vms", "virtual"),
        ("uss", "USS"),
        ("pss", "PSS"),
        ("swap", "swap"),
        ("traced", "Python heap (traced)"),
    ):
        if key in readings:
            mem.add_row(label, format_bytes(readings[key]))
    trends = data.get("trends", {})
    rate = trends.get("growth_rate_mb_per_min")
    if rate is not None:
        mem.add_row("growth (10 min)", f"{rate:+.2f} MB/min ({trends.get('verdict', '')})")
    mem.add_row("RSS (10 min)", sparkline(trends.get("rss_bytes", [])))
    parts.append(mem)

    leaks = data.get("leaks", [])
    if leaks:
        table = Table(title="Leak alerts", title_style="bold red")
        for col in ("id", "component", "MB/min", "first seen", "critical in", "top site"):
            table.add_column(col)
        for leak in leaks:
            projected = leak.get("projected_seconds_to_critical")
            sites = leak.get("sites") or []
            table.add_row(
                leak["id"],
                leak["component"],
                f"{leak['growth_rate_mb_per_min']:.2f}",
                leak["first_seen"],
                format_duration(projected) if projected is not None else "-",
                sites[0]["location"] if sites else "-",
            )
        parts.append(table)

    components = data.get("components", [])
    if components:
        table = Table(
            title="Components" + ("" if data.get("components_tracked") else " (tracemalloc off)")
        )
        for col in ("component", "current", "peak", "growth"):
            table.add_column(col, justify="right" if col != "component" else "left")
        for c in components:
            table.add_row(
                c["name"],
                format_bytes(c["current"]),
                format_bytes(c["peak"]),
                format_bytes(c["growth"], signed=True),
            )
        parts.append(table)

    sites = data.get("top_sites", [])
    if sites:
        table = Table(title="Top allocation sites")
        for col in ("site", "function", "size", "growth"):
            table.add_column(col, justify="right" if col in ("size", "growth") else "left")
        for s in sites:
            table.add_row(
                s["location"],
                s.get("function", ""),
                format_bytes(s["size"]),
                format_bytes(s["size_diff"], signed=True),
            )
        parts.append(table)

    gc_rows = data.get("gc", [])
    if gc_rows:
        table = Table(title="GC")
        for col in ("gen", "collections", "collected", "uncollectable", "pause total", "pause max"):
            table.add_column(col, justify="right")
        for g in gc_rows:
            table.add_row(
                str(g["generation"]),
                str(g["collections"]),
                str(g["collected"]),
                str(g["uncollectable"]),
                format_duration(g["pause_total"]) if g["pause_total"] else "0",
                format_duration(g["pause_max"]) if g["pause_max"] else "0",
            )
        parts.append(table)
    return Panel(Group(*parts), title=f"memlens top — {data.get('time', '')}")


class ProcessSource:
    """``/debug/memory``-shaped payloads for a process read from the outside."""

    def __init__(self, pid: int) -> None:
        import psutil

        from memlens.heap.process_meter import ProcessMeter

        try:
            self.proc = psutil.Process(pid)
            name = " ".join(self.proc.cmdline()) or self.proc.name()
            self.started = self.proc.create_time()
        except psutil.NoSuchProcess:
            raise EndpointError(f"no process with id {pid}") from None
        except psutil.AccessDenied:
            raise EndpointError(f"not allowed to read process {pid}") from None
        self.pid = pid
        self.name = name if len(name) <= 60 else name[:57] + "..."
        self.meter = ProcessMeter(pid, smaps_interval=10.0)
        self.history: list[int] = []

    def read(self) -> dict[str, Any]:
        if not os.path.exists(f"/proc/{self.pid}") and not self.proc.is_running():
            raise EndpointError(f"process {self.pid} has exited")
        try:
            readings = {k: int(v) for k, v in self.meter.read().items()}
            readings.update({k: int(v) for k, v in self.meter.read_detailed().items()})
        except Exception as exc:  # noqa: BLE001 - the process went away mid-read
            raise EndpointError(f"cannot read process {self.pid}: {exc}") from None
        if not readings.get("rss"):
            raise EndpointError(f"process {self.pid} has exited")
        self.history = (self.history + [readings["rss"]])[-240:]
        return {
            "service": self.name,
            "pid": self.pid,
            "mode": "process",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "uptime_seconds": max(0.0, time.time() - self.started),
            "readings": readings,
            "trends": {"rss_bytes": self.history},
            "health": {"status": "n/a"},
        }


@click.command(name="top")
@click.argument("url")
@click.option(
    "--interval",
    "-n",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between refreshes.",
)
@click.option(
    "--token",
    envvar="MEMLENS_HTTP_TOKEN",
    default=None,
    help="Bearer token of the endpoint (or $MEMLENS_HTTP_TOKEN).",
)
@click.option("--once", is_flag=True, help="Print one view and exit (for scripts and tests).")
def command(url: str, interval: float, token: str | None, once: bool) -> None:
    """Live view of a running service's memory.

    URL is the monitor's address, e.g. http://127.0.0.1:9000 (start the monitor with
    http_enabled=true or Monitor.serve_http()), or the id of any local process, whose
    memory is then read from /proc without attaching to it.
    """
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    if url.isdigit():
        source = ProcessSource(int(url))
        read = source.read
    else:
        target = endpoint_url(url)

        def read() -> dict[str, Any]:
            return fetch(target, token)

    data = read()  # fail fast, with one line, if it is not reachable
    console = Console()
    if once:
        console.print(render(data))
        return
    try:
        if not console.is_terminal:
            # No cursor control in a pipe or a file: print each view as it comes.
            while True:
                console.print(render(data))
                time.sleep(interval)
                data = read()
        with Live(render(data), console=console, refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(interval)
                try:
                    live.update(render(read()))
                except EndpointError as exc:
                    if url.isdigit():
                        raise
                    live.update(
                        Text(f"memlens top: {exc} (retrying every {interval:g} s)", style="red")
                    )
    except KeyboardInterrupt:
        return
