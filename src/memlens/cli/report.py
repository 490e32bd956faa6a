"""``memlens report ID``: render a stored session as text, HTML or JSON."""

from __future__ import annotations

from pathlib import Path

import click

from memlens.cli._store_options import db_option, reading_store
from memlens.report.output import write_atomically


@click.command()
@db_option
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["text", "html", "json"]),
    default="text",
    show_default=True,
)
@click.option(
    "-o",
    "--output",
    metavar="PATH",
    help="Write here. Default: stdout for text/json, memlens-report-ID.html for html.",
)
@click.argument("session_id", metavar="ID")
def command(db: str | None, fmt: str, output: str | None, session_id: str) -> None:
    """Render session ID (a full id, a unique prefix, or 'latest')."""
    store = reading_store(db)
    try:
        session = store.load(session_id)
    finally:
        store.close()
    if fmt == "html":
        from memlens.report.html import render_html

        text = render_html(session)
        output = output or f"memlens-report-{session.id}.html"
    elif fmt == "json":
        from memlens.report.json import render_json

        text = render_json(session)
    else:
        from memlens.report.terminal import render_text

        text = render_text(session)
    if output is None or output == "-":
        click.echo(text, nl=False)
        return
    path = write_atomically(Path(output), text)
    click.echo(f"memlens: {fmt} report: {path}", err=True)
