"""``memlens memory check|recover|show|add|fit``: shared memory from the command line.

``show SESSION`` prints a shared context memory's window as stored (read-only);
``add SESSION TEXT`` and ``fit SESSION`` open it as one more worker would (a
:class:`~memlens.context.shared.SharedContextMemory`), change it and sync, printing
the sync's version and conflicts.

``check`` verifies every record's checksum and compares each memory session with its
newest readable snapshot plus the journal after it; it only reads (the store is
opened read-only) and exits 1 when anything is wrong, so it can gate a deploy.
``recover`` repairs one session from its last good snapshot and journal and says
which way it went (see :func:`memlens.context.shared.recover_corrupted_memory`).
"""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from memlens.cli._store_options import store_target
from memlens.context.shared.memory import (
    archive_rebuilder,
    open_shared_memory,
    read_shared_memory,
)
from memlens.context.shared.recovery import CheckReport, check_memory, recover_corrupted_memory
from memlens.context.shared.sync import SyncResult
from memlens.core.errors import MemlensError
from memlens.store import open_record_store


@click.group()
def command() -> None:
    """Check and repair shared memory records (versions, checksums, journal, snapshots)."""


@command.command("check")
@click.argument("url", required=False, metavar="[URL]")
@click.option("--session", "sessions", multiple=True, help="Only this memory session (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
def check(url: str | None, sessions: tuple[str, ...], as_json: bool) -> None:
    """Verify the memory store at URL (a file, sqlite:///…, redis://…; default: the session
    store). Exits 1 if any record, journal entry or snapshot is damaged or missing."""
    store = open_record_store(store_target(url), create=False, readonly=True)
    try:
        names = list(sessions) or store.namespaces()
        reports = [check_memory(store, name) for name in names]
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in reports], indent=2))
    elif not reports:
        click.echo(f"No memory sessions in {store.location}.")
    else:
        _print_reports(reports, store.location)
    if any(not r.ok for r in reports):
        sys.exit(1)


def _print_reports(reports: list[CheckReport], location: str) -> None:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name, justify in (
        ("session", "left"),
        ("records", "right"),
        ("journal", "right"),
        ("snapshots", "right"),
        ("status", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in reports:
        status = "[green]ok[/]" if r.ok else f"[bold red]{len(r.problems)} problem(s)[/]"
        table.add_row(
            escape(r.namespace), str(r.records), str(r.journal_entries), str(r.snapshots), status
        )
    console.print(f"Memory store {escape(location)}")
    console.print(table)
    for r in reports:
        for problem in r.problems:
            console.print(f"  {escape(r.namespace)}: {escape(problem.describe())}")
    bad = [r.namespace for r in reports if not r.ok]
    if bad:
        console.print(
            f"Repair with: memlens memory recover {escape(bad[0])} --db {escape(location)}"
        )


@command.command("recover")
@click.argument("session_id", metavar="SESSION")
@click.option("--db", "db", metavar="PATH|URL", default=None, help="The memory store.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def recover(session_id: str, db: str | None, as_json: bool) -> None:
    """Repair SESSION from its last good snapshot and the journal after it (a shared
    context memory's lost items are rebuilt from its archive)."""
    store = open_record_store(store_target(db), create=False)
    try:
        if session_id not in store.namespaces():
            raise MemlensError(f"no memory session {session_id!r} in {store.location}")
        rebuild = archive_rebuilder(store, session_id)
        result = recover_corrupted_memory(store, session_id, rebuild=rebuild)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif result.method == "none":
        click.echo(f"{session_id}: nothing to repair ({len(result.detected)} problems found).")
    else:
        click.echo(
            f"{session_id}: {len(result.detected)} problem(s) found; recovered by "
            f"{result.method} (snapshot {result.snapshot_id}, {result.journal_applied} journal "
            f"entries); restored {len(result.restored)}, rebuilt {len(result.rebuilt)}, "
            f"lost {len(result.lost)}" + (f": {', '.join(result.lost)}" if result.lost else "")
        )
        if result.error:
            click.echo(f"{session_id}: {result.error}", err=True)
    if not result.valid:
        sys.exit(1)


@command.command("show")
@click.argument("session_id", metavar="SESSION")
@click.option("--db", "db", metavar="PATH|URL", default=None, help="The memory store.")
@click.option("--json", "as_json", is_flag=True, help="Print the window as JSON.")
def show(session_id: str, db: str | None, as_json: bool) -> None:
    """Print the shared context memory SESSION as stored: items, tokens, archive."""
    store = open_record_store(store_target(db), create=False, readonly=True)
    try:
        if session_id not in store.namespaces():
            raise MemlensError(f"no memory session {session_id!r} in {store.location}")
        view = read_shared_memory(store, session_id)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(view.to_dict(), indent=2))
        return
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("item", "layer", "level", "tokens", "version", "writer", "text"):
        justify = "right" if name in ("tokens", "version") else "left"
        table.add_column(name, justify=justify, no_wrap=name != "text")  # type: ignore[arg-type]
    for item in view.items:
        e = item.entry
        text = e.content.replace("\n", " ")
        table.add_row(
            escape(e.id),
            escape(e.layer.value),
            str(e.level),
            f"{e.tokens:,}",
            str(item.version),
            escape(item.writer),
            escape(text[:60] + ("…" if len(text) > 60 else "")),
        )
    console.print(
        f"Shared memory {escape(session_id)} in {escape(view.location)}: {len(view.items)} "
        f"items, {view.tokens:,} tokens, version {view.head}; {len(view.replaced)} replaced, "
        f"{len(view.archived)} originals archived"
    )
    console.print(table)


@command.command("add")
@click.argument("session_id", metavar="SESSION")
@click.argument("text")
@click.option("--role", default="user", show_default=True, help="The message's role.")
@click.option("--db", "db", metavar="PATH|URL", default=None, help="The memory store.")
@click.option("--writer", default=None, help="Writer id (default: host:pid).")
@click.option("--json", "as_json", is_flag=True, help="Print the sync result as JSON.")
def add(
    session_id: str, text: str, role: str, db: str | None, writer: str | None, as_json: bool
) -> None:
    """Add a message to the shared context memory SESSION and sync it."""
    memory = open_shared_memory(store_target(db), session_id, writer_id=writer)
    try:
        entry = memory.add_message(role, text)
        result = memory.sync()
    finally:
        memory.manager.close()
    _print_sync(session_id, f"added {entry.id} ({entry.tokens} tokens)", result, as_json)


@command.command("fit")
@click.argument("session_id", metavar="SESSION")
@click.option("--budget", required=True, help="Token budget to fit into (e.g. 8000, 50k).")
@click.option(
    "--keep-last-turns",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Turns never touched.",
)
@click.option("--db", "db", metavar="PATH|URL", default=None, help="The memory store.")
@click.option("--writer", default=None, help="Writer id (default: host:pid).")
@click.option("--json", "as_json", is_flag=True, help="Print the sync result as JSON.")
def fit(
    session_id: str,
    budget: str,
    keep_last_turns: int,
    db: str | None,
    writer: str | None,
    as_json: bool,
) -> None:
    """Fit the shared context memory SESSION into a budget (originals archived) and sync."""
    memory = open_shared_memory(
        store_target(db), session_id, writer_id=writer, keep_last_turns=keep_last_turns
    )
    try:
        if memory.last_sync is not None and not memory.last_sync.success:
            raise MemlensError(f"cannot reach the store: {memory.last_sync.error}")
        report = memory.fit(budget)
        result = memory.sync()
    finally:
        memory.manager.close()
    done = (
        f"{report.before:,} -> {report.after:,} tokens ({', '.join(report.actions) or 'nothing'}"
        f"; {len(report.evicted)} evicted, {len(report.summaries)} summaries)"
    )
    _print_sync(session_id, done, result, as_json)


def _print_sync(session_id: str, done: str, result: SyncResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"done": done, "sync": result.to_dict()}, indent=2))
    elif result.success:
        click.echo(
            f"{session_id}: {done}; synced at version {result.version}, "
            f"{result.conflicts_resolved} conflict(s)"
        )
        for c in result.conflicts:
            click.echo(f"  conflict on {c.key}: {c.strategy} -> {c.resolution}")
    if not result.success:
        raise MemlensError(f"{session_id}: {done}, but not synced: {result.error}")
