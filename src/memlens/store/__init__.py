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
from pathlib import Path

from memlens.core.errors import StoreError
from memlens.store.base import SessionRow, SessionStore
from memlens.store.records import RecordStore
from memlens.store.sqlite import SqliteStore

DEFAULT_PATH = Path(".memlens") / "memlens.db"
ENV_VAR = "MEMLENS_DB"

__all__ = [
    "DEFAULT_PATH",
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


#: Targets that name a Redis server rather than a file.
URL_SCHEMES = ("redis://", "rediss://", "unix://")


def default_target() -> str:
    """Like :func:`default_path`, but a ``redis://`` URL in ``$MEMLENS_DB`` or the config
    stays a URL (``Path`` would fold its ``//``)."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env.startswith(URL_SCHEMES):
        return env
    if not env and (Path("memlens.toml").is_file() or Path("pyproject.toml").is_file()):
        from memlens.core.config import load_config

        configured = str(load_config().db_path or "")
        if configured.startswith(URL_SCHEMES):
            return configured
    return str(default_path())


def default_path() -> Path:
    """``$MEMLENS_DB``, else the configured ``db_path``, else ``./.memlens/memlens.db``.

    Relative paths are relative to the current directory.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env)
    # Only the config files can still set it; skip parsing them when there are none.
    if Path("memlens.toml").is_file() or Path("pyproject.toml").is_file():
        from memlens.core.config import load_config

        configured = load_config().db_path
        if configured:
            return Path(configured)
    return DEFAULT_PATH


def open_store(
    path: str | os.PathLike[str] | None = None, *, create: bool = True, readonly: bool = False
) -> SessionStore:
    """Open the session store at ``path`` (see the module docstring for the default).

    ``path`` may also be a Redis URL (``redis://host:port/db``, the ``redis`` extra).
    ``create=False`` raises :class:`~memlens.core.errors.NotFoundError` instead of
    creating a missing database; ``readonly=True`` (for commands that only read)
    never creates or changes anything and refuses a file that is not memlens's.
    """
    target = str(path) if path is not None else default_target()
    if target.startswith(URL_SCHEMES):
        from memlens.store.redis_sessions import RedisSessionStore

        return RedisSessionStore(target, readonly=readonly)
    return SqliteStore(sqlite_path(target), create=create, readonly=readonly)


def sqlite_path(target: str) -> str:
    """The file of ``sqlite:///relative.db`` / ``sqlite:////absolute.db``, or ``target`` itself."""
    if not target.startswith("sqlite://"):
        return target
    rest = target[len("sqlite://") :]
    if rest.startswith("//"):
        return rest[1:]  # sqlite:////abs/x.db -> /abs/x.db
    return rest[1:] if rest.startswith("/") else rest


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
