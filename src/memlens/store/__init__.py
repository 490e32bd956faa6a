"""Where sessions are kept: an embedded SQLite store by default.

``open_store()`` picks the store: an explicit path, else ``$MEMLENS_DB``, else
``db_path`` from ``memlens.toml``/``pyproject.toml`` (see :mod:`memlens.core.config`),
else ``./.memlens/memlens.db``; a ``redis://`` URL in any of them selects the Redis
store. Everything else talks to the :class:`SessionStore` protocol.

Memory records (versioned, journaled, snapshotted) have their own protocol in
:mod:`memlens.store.records`, with SQLite and Redis backends too.
"""

from __future__ import annotations

import os

from memlens.core.errors import StoreError
from memlens.core.store_target import (
    DEFAULT_PATH,
    ENV_VAR,
    URL_SCHEMES,
    default_path,
    default_target,
    sqlite_path,
)
from memlens.store import monitor_history
from memlens.store.base import SessionRow, SessionStore
from memlens.store.records import RecordStore
from memlens.store.sqlite import SqliteStore

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "URL_SCHEMES",
    "SessionRow",
    "SessionStore",
    "SqliteStore",
    "RecordStore",
    "default_path",
    "default_target",
    "open_record_store",
    "open_store",
    "sqlite_path",
]


def open_store(
    path: str | os.PathLike[str] | None = None, *, create: bool = True, readonly: bool = False
) -> SessionStore:
    """Open the session store at ``path`` (see the module docstring for the default).

    ``path`` may also be a Redis URL (``redis://host:port/db``, the ``redis`` extra).
    ``create=False`` raises :class:`~memlens.core.errors.NotFoundError` instead of
    creating a missing database; ``readonly=True`` (for commands that only read)
    changes nothing in the sessions and refuses a file that is not memlens's.

    Either way, the always-on monitor's history files next to a SQLite database are
    brought in first (:mod:`memlens.store.monitor_history`): they are part of the
    store, kept outside the database so the watched process never opens it. That is
    the one write a read-only open makes (it creates the database when only history
    files exist), so that reading commands show the monitor's latest history.
    """
    target = str(path) if path is not None else default_target()
    if target.startswith(URL_SCHEMES):
        from memlens.store.redis_sessions import RedisSessionStore

        return RedisSessionStore(target, readonly=readonly)
    db = sqlite_path(target)
    if db and db != ":memory:":
        monitor_history.ingest(os.path.expanduser(db), lambda: SqliteStore(db))
    return SqliteStore(db, create=create, readonly=readonly)


def open_record_store(url: str, *, create: bool = True, readonly: bool = False) -> RecordStore:
    """Open a memory record store (see :mod:`memlens.store.records`).

    ``url`` is ``sqlite:///relative.db``, ``sqlite:////absolute.db``, a plain path, or
    ``redis://host:port/db[?prefix=NAME]``. ``create=False`` refuses to create a missing
    SQLite file; ``readonly=True`` never creates or changes anything (for checks).
    """
    text = str(url).strip()
    if text.startswith(URL_SCHEMES):
        from memlens.store.redis_records import RedisRecordStore

        return RedisRecordStore(text, readonly=readonly)
    text = sqlite_path(text)
    if not text:
        raise StoreError(f"invalid record store URL {url!r}: expected sqlite:///path or redis://…")
    from memlens.store.sqlite_records import SqliteRecordStore

    return SqliteRecordStore(text, create=create, readonly=readonly)
