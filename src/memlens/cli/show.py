"""``memlens show ID``: a stored session's summary in the terminal."""

from __future__ import annotations

import click

from memlens.cli._store_options import db_option, reading_store
from memlens.report.console import output_console
from memlens.report.terminal import render_terminal


@click.command()
@db_option
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many allocation sites to list.",
)
@click.argument("session_id", metavar="ID")
def command(db: str | None, top: int, session_id: str) -> None:
    """Show the summary of session ID (a full id, a unique prefix, or 'latest')."""
    store = reading_store(db)
    try:
        session = store.load(session_id)
    finally:
        store.close()
    render_terminal(session, output_console(), top=top)
