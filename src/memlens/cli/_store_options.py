"""Options and helpers shared by the commands that work on stored sessions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from memlens.store import URL_SCHEMES, SessionStore, default_target, open_store

F = TypeVar("F", bound=Callable[..., Any])


def db_option(func: F) -> F:
    """The ``--db PATH`` option every store command takes."""
    return click.option(
        "--db",
        "db",
        metavar="PATH|URL",
        default=None,
        help="Session database: a file or redis://host:port/db "
        "(default: $MEMLENS_DB, else ./.memlens/memlens.db).",
    )(func)


def reading_store(db: str | None) -> SessionStore:
    """Open the store for a command that only reads: never creates or changes anything."""
    return open_store(db, create=False, readonly=True)


def existing_store(db: str | None) -> SessionStore:
    """Open an existing store for writing (``rm``): never creates a database."""
    return open_store(db, create=False)


def store_target(db: str | None) -> str:
    """``--db`` (or the default) as an absolute path, or the Redis URL as given."""
    target = db or default_target()
    if is_url(target) or target.startswith("sqlite://"):
        return target
    return str(Path(target).absolute())


def is_url(target: str) -> bool:
    """True for the store URLs memlens accepts (``redis://``, ``rediss://``, ``unix://``)."""
    return target.startswith(URL_SCHEMES)
