"""Where sessions are kept: an embedded SQLite store by default.

``open_store()`` picks the store: an explicit path, else ``$MEMLENS_DB``, else
``db_path`` from ``memlens.toml``/``pyproject.toml`` (see :mod:`memlens.core.config`),
else ``./.memlens/memlens.db``. Everything else talks to the :class:`SessionStore`
protocol, so another backend (Redis, later) slots in behind ``open_store``.
"""

from __future__ import annotations

import os
from pathlib import Path

from memlens.core.errors import StoreError
from memlens.store.base import SessionRow, SessionStore
from memlens.store.sqlite import SqliteStore

DEFAULT_PATH = Path(".memlens") / "memlens.db"
ENV_VAR = "MEMLENS_DB"

__all__ = [
    "DEFAULT_PATH",
    "SessionRow",
    "SessionStore",
    "SqliteStore",
    "default_path",
    "open_store",
]


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


def open_store(path: str | os.PathLike[str] | None = None, *, create: bool = True) -> SessionStore:
    """Open the session store at ``path`` (see the module docstring for the default).

    ``create=False`` raises :class:`~memlens.core.errors.NotFoundError` instead of
    creating a missing database, for commands that only read.
    """
    target = str(path) if path is not None else str(default_path())
    if target.startswith(("redis://", "rediss://")):
        raise StoreError("the Redis session store is not available in this version of memlens")
    return SqliteStore(target, create=create)
