"""``memlens rm ID…``: delete stored sessions."""

from __future__ import annotations

import sys

import click

from memlens.cli._store_options import db_option, existing_store
from memlens.core.errors import MemlensError
from memlens.store.base import LATEST


@click.command()
@db_option
@click.option("--all", "delete_all", is_flag=True, help="Delete every stored session.")
@click.option("-y", "--yes", is_flag=True, help="Don't ask before deleting with --all.")
@click.argument("session_ids", metavar="[ID]...", nargs=-1)
def command(db: str | None, delete_all: bool, yes: bool, session_ids: tuple[str, ...]) -> None:
    """Delete sessions by full id (or 'latest', the newest), or all with --all.

    Every id is checked first: if one is unknown or not exact, nothing is deleted.
    """
    if delete_all and session_ids:
        raise MemlensError("give session ids or --all, not both")
    if not delete_all and not session_ids:
        raise MemlensError("nothing to delete: give one or more session ids, or --all")
    store = existing_store(db)
    try:
        if delete_all:
            ids = [row.id for row in store.list(verify=False)]
            if not ids:
                click.echo(f"No sessions in {store.location}.")
                return
            if not yes:
                if not sys.stdin.isatty():
                    raise MemlensError(f"refusing to delete all {len(ids)} sessions without --yes")
                question = f"Delete all {len(ids)} sessions in {store.location}?"
                if not click.confirm(question, err=True):
                    click.echo("Nothing deleted.")
                    return
        else:
            # Resolve everything before deleting anything.
            ids = list(dict.fromkeys(_exact(store.resolve(s), s) for s in session_ids))
        for full_id in ids:
            store.delete(full_id)
    finally:
        store.close()
    noun = "session" if len(ids) == 1 else "sessions"
    click.echo(f"Deleted {len(ids)} {noun}: {', '.join(ids)}")


def _exact(full_id: str, given: str) -> str:
    """Deleting needs the full id (or ``latest``): a prefix or suffix could hit another."""
    if given.strip() in (full_id, LATEST):
        return full_id
    raise MemlensError(f"rm needs a full session id or 'latest': {given!r} matches {full_id}")
