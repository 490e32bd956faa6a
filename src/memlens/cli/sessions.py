"""``memlens sessions``: list stored sessions, newest first."""

from __future__ import annotations

import json
from datetime import datetime

import click
from rich.table import Table

from memlens.cli._store_options import db_option, reading_store
from memlens.core.errors import NotFoundError
from memlens.core.units import format_bytes, format_duration
from memlens.report.common import status_style
from memlens.report.console import output_console
from memlens.report.safe import plain
from memlens.store import SessionRow


@click.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the rows as a JSON array.")
@click.option("--kind", help="Only sessions of this kind (run, profile, doctor, …).")
@click.option("--status", help="Only sessions with this status (completed, failed, …).")
@click.option("-n", "--limit", type=click.IntRange(min=1), help="Show at most this many.")
def command(
    db: str | None, as_json: bool, kind: str | None, status: str | None, limit: int | None
) -> None:
    """List stored sessions, newest first. Corrupted ones are flagged, not hidden."""
    try:
        store = reading_store(db)
    except NotFoundError as exc:
        # Nothing recorded yet is not an error for a listing.
        click.echo("[]" if as_json else f"No sessions yet: {exc}")
        return
    try:
        rows = store.list(kind=kind, status=status, limit=limit)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([row.to_dict() for row in rows], indent=2))
        return
    if not rows:
        click.echo(f"No sessions in {store.location}.")
        return
    console = output_console()
    console.print(sessions_table(rows))


def sessions_table(rows: list[SessionRow]) -> Table:
    """The listing as a rich table."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("name", overflow="ellipsis", no_wrap=True, max_width=32)
    table.add_column("kind", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("started", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("peak RSS", justify="right", no_wrap=True)
    table.add_column("growth", justify="right", no_wrap=True)
    for row in rows:
        status = "CORRUPTED" if row.corrupted else row.status
        style = "bold red" if row.corrupted else status_style(row.status)
        table.add_row(
            plain(row.id),
            plain(row.name),
            plain(row.kind),
            plain(status, style),
            _local_time(row.started_at),
            format_duration(row.duration),
            format_bytes(row.peak_rss),
            format_bytes(row.growth, signed=True),
        )
    return table


def _local_time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso
