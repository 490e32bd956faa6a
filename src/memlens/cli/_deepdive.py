"""Shared output for the deep-dive commands: text, JSON or one HTML file."""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any

import click

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "html"]),
    default="text",
    show_default=True,
    help="Output format.",
)
OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the report to this file instead of stdout.",
)


def emit(kind: str, data: dict[str, Any], fmt: str, output: str | None) -> None:
    """Render ``data`` (deep dive ``kind``) and print it or write it to ``output``."""
    if fmt == "json":
        text = json.dumps(data, indent=2, default=str) + "\n"
    elif fmt == "html":
        from memlens.report.deepdive_html import render_page

        text = render_page(kind, data)
    else:
        from memlens.report.deepdive_text import render

        tty = output is None and sys.stdout.isatty()
        width = shutil.get_terminal_size((120, 24)).columns if tty else None
        text = render(kind, data, width=width, color=tty)
    if output:
        from pathlib import Path

        from memlens.report.output import write_atomically

        write_atomically(Path(output), text)
        click.echo(f"memlens: wrote {output}", err=True)
    else:
        click.echo(text.rstrip("\n"))
