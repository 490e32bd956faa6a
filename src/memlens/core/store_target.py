"""Which session store a command or a monitor uses, decided without opening it.

An explicit path, else ``$MEMLENS_DB``, else ``db_path`` from ``memlens.toml`` /
``pyproject.toml``, else ``./.memlens/memlens.db``; a ``redis://`` URL in any of them
names the Redis store. :mod:`memlens.store` opens what this names; the always-on
monitor reads it to find its history file without loading the store (issue #15).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_PATH = Path(".memlens") / "memlens.db"
ENV_VAR = "MEMLENS_DB"

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


def is_url(target: str) -> bool:
    """True for a target that names a Redis server (``redis://``, ``rediss://``, ``unix://``)."""
    return target.startswith(URL_SCHEMES)


def sqlite_path(target: str) -> str:
    """The file of ``sqlite:///relative.db`` / ``sqlite:////absolute.db``, or ``target`` itself."""
    if not target.startswith("sqlite://"):
        return target
    rest = target[len("sqlite://") :]
    if rest.startswith("//"):
        return rest[1:]  # sqlite:////abs/x.db -> /abs/x.db
    return rest[1:] if rest.startswith("/") else rest
