"""Options and helpers shared by the commands that work on stored sessions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from memlens.store import SessionStore, open_store

F = TypeVar("F", bound=Callable[..., Any])


def db_option(func: F) -> F:
    """The ``--db PATH`` option every store command takes."""
    return click.option(
        "--db",
        "db",
        metavar="PATH",
        default=None,
        help="Session database (default: $MEMLENS_DB, else ./.memlens/memlens.db).",
    )(func)


def reading_store(db: str | None) -> SessionStore:
    """Open the store for a command that only reads: never creates a database."""
    return open_store(db, create=False)
