"""``memlens report ID``: render a stored session as text, HTML or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    from memlens.report.progress import busy

    store = reading_store(db)
    # A big session takes a while to load and render: say so on a terminal.
    with busy("memlens: loading the session") as say:
        try:
            session = store.load(session_id)
        finally:
            store.close()
        say(f"memlens: rendering the {fmt} report")
        text, output = _render(session, fmt, output)
    if output is None or output == "-":
        click.echo(text, nl=False)
        return
    path = write_atomically(Path(output), text)
    click.echo(f"memlens: {fmt} report: {path}", err=True)


def _render(session: Any, fmt: str, output: str | None) -> tuple[str, str | None]:
    """The report text in ``fmt``, and where it goes (HTML defaults to a file)."""
    if fmt == "html":
        from memlens.report.html import render_html

        return render_html(session), output or f"memlens-report-{session.id}.html"
    if fmt == "json":
        from memlens.report.json import render_json

        return render_json(session), output
    from memlens.report.terminal import render_text

    return render_text(session), output
