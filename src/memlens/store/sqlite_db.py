"""Opening memlens's SQLite file safely, shared by the session and record stores.

Two ways in, because reading must never change the user's file:

- ``write=False`` (``sessions``, ``show``, ``memory check`` …) opens the file
  read-only (``mode=ro``): no migration, no WAL switch, nothing created. A file that
  is empty (0 bytes) or holds someone else's tables is refused with one line. If the
  directory is read-only, SQLite still reads the file; where it cannot (a WAL file
  that needs its shared-memory index), the file is opened ``immutable``.
- ``write=True`` first checks that the file and its directory are writable and that
  the file is memlens's (or new), then switches to WAL, migrates, and takes and
  releases the write lock once, so a read-only store is reported *before* a program
  runs rather than after.

Errors are :class:`~memlens.core.errors.StoreError` (``NotFoundError`` for a missing
file when not creating) with one line that names the file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from memlens.core.errors import NotFoundError, StoreError
from memlens.store.migrations import MIGRATIONS, Migration, current_version, migrate

T = TypeVar("T")
F = TypeVar("F", bound="SqliteFile")

_SQLITE_MAGIC = b"SQLite format 3\x00"


def is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def retry(fn: Callable[[], T], timeout: float) -> T:
    """Call ``fn``, retrying with backoff while another process holds the lock."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


@contextmanager
def immediate(
    conn: sqlite3.Connection, lock: threading.RLock, timeout: float
) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the database's write lock up front (``BEGIN
    IMMEDIATE``), so two writers queue instead of deadlocking; rolled back on error."""
    with lock:
        retry(lambda: conn.execute("BEGIN IMMEDIATE"), timeout)
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            retry(lambda: conn.execute("COMMIT"), timeout)
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def reason(exc: BaseException) -> str:
    """SQLite's message in words a user can act on."""
    text = str(exc)
    if "file is not a database" in text:
        return "not an SQLite database (file is not a database)"
    if "malformed" in text:
        return "the database file is damaged (database disk image is malformed)"
    if "unable to open" in text:
        return "unable to open the file (check the path and permissions)"
    if "readonly" in text or "read-only" in text:
        return "the database is read-only"
    return text or type(exc).__name__


def open_database(
    path: Path,
    *,
    write: bool,
    create: bool,
    timeout: float,
    migrations: Sequence[Migration] = MIGRATIONS,
    missing_hint: str = "nothing recorded yet: try `memlens run script.py`",
) -> sqlite3.Connection:
    """A connection to memlens's database at ``path`` (see the module docstring)."""
    if path.is_dir():
        raise StoreError(f"cannot open session store {path}: it is a directory")
    exists = path.exists()
    if not exists:
        if not (write and create):
            raise NotFoundError(f"no session store at {path} ({missing_hint})")
        _make_parent(path)
        _create(path, migrations)
    if path.exists():
        _check_file(path, write)
    if write:
        conn = _connect(path, "rwc" if create else "rw", timeout)
    else:
        conn = _connect(path, "ro", timeout)
    try:
        _check_memlens(conn, path, exists, write)
        if write:
            mode = retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone(), timeout)
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreError(f"cannot open session store {path}: WAL mode unavailable")
            # NORMAL is durable across process crashes in WAL mode; only power loss
            # can drop the last commits.
            conn.execute("PRAGMA synchronous = NORMAL")
            retry(lambda: migrate(conn, migrations, location=str(path)), timeout)
            _probe_write(conn, path, timeout)
        else:
            newest = migrations[-1].version if migrations else 0
            found = current_version(conn)
            if found > newest:
                raise StoreError(
                    f"{path} has schema version {found}, newer than this memlens "
                    f"understands ({newest}); upgrade memlens"
                )
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot open session store {path}: {reason(exc)}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _create(path: Path, migrations: Sequence[Migration]) -> None:
    """Create the store whole, so no process ever sees it half made.

    SQLite creates a file empty and writes its header later: a process opening the
    store in that moment would see a 0-byte file and (rightly, for a file that stays
    empty) refuse it. So the schema is written to a private file beside it, which is
    then linked into place only if nothing is there yet; whoever links first wins and
    the others open that store. Where hard links are not supported, SQLite creates the
    file in place as before.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    try:
        conn = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            migrate(conn, migrations, location=str(path))
        finally:
            conn.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created the store first: use theirs
        except OSError:
            return  # no hard links here: let SQLite create the file in place
    except sqlite3.Error as exc:
        raise StoreError(f"cannot create session store {path}: {reason(exc)}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _make_parent(path: Path) -> None:
    parent = path.parent
    try:
        if not parent.exists():
            parent.mkdir(parents=True)
            if parent.name == ".memlens":
                # Keep the default store out of the user's git repository.
                (parent / ".gitignore").write_text("*\n", encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"cannot create session store {path}: {exc.strerror}") from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"cannot create session store {path}: directory {parent} is read-only")


def _check_file(path: Path, write: bool) -> None:
    if not os.access(path, os.R_OK):
        raise StoreError(f"cannot open session store {path}: permission denied")
    try:
        with path.open("rb") as fh:
            header = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot open session store {path}: {exc.strerror}") from exc
    if not header:
        raise StoreError(
            f"{path} is an empty file (0 bytes), not a memlens store; "
            "remove it or give another --db"
        )
    if header != _SQLITE_MAGIC:
        raise StoreError(
            f"cannot open session store {path}: not an SQLite database (file is not a database)"
        )
    if write:
        if not os.access(path, os.W_OK):
            raise StoreError(f"cannot write session store {path}: the file is read-only")
        if not os.access(path.parent, os.W_OK | os.X_OK):
            # WAL needs its -wal and -shm files next to the database.
            raise StoreError(
                f"cannot write session store {path}: directory {path.parent} is read-only"
            )


def _connect(path: Path, mode: str, timeout: float) -> sqlite3.Connection:
    # mode=ro/rw never create a file, so a typo in --db on a read can't leave one behind.
    uri = path.resolve().as_uri() + f"?mode={mode}"
    try:
        conn = sqlite3.connect(
            uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        # Reading the schema here turns "not a database" into an early, clear error.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if mode != "ro" or not ("unable to open" in text or "readonly" in text):
            raise StoreError(f"cannot open session store {path}: {reason(exc)}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open session store {path}: {reason(exc)}") from exc
    # A WAL database in a directory we cannot write: read what the main file holds.
    try:
        conn = sqlite3.connect(
            uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=False
        )
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open session store {path}: {reason(exc)}") from exc


def _check_memlens(conn: sqlite3.Connection, path: Path, existed: bool, write: bool) -> None:
    tables = [
        str(r[0])
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    if "schema_version" in tables:
        return
    if tables:
        shown = ", ".join(tables[:5]) + (", …" if len(tables) > 5 else "")
        raise StoreError(
            f"{path} is not a memlens store (it holds other tables: {shown}); "
            "memlens leaves it untouched: give another --db"
        )
    if existed and not write:
        # Nothing to lose by writing to a table-less SQLite file, but reading one
        # means the path is probably wrong.
        raise StoreError(f"{path} is an empty SQLite database, not a memlens store")


def _probe_write(conn: sqlite3.Connection, path: Path, timeout: float) -> None:
    """Take the write lock once: a read-only database fails here, before any work."""
    try:
        retry(lambda: conn.execute("BEGIN IMMEDIATE"), timeout)
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        raise StoreError(f"cannot write session store {path}: {reason(exc)}") from exc


class SqliteFile:
    """One memlens SQLite file held by a store: the path, a lock, the connection.

    The session store and the record store both hold one (see :func:`open_database`
    for what ``create``, ``readonly`` and ``timeout`` mean); ``_write()`` is a
    transaction that holds the database's write lock from the start. Safe to share
    between threads of one process; use one instance per process.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        readonly: bool = False,
        timeout: float = 30.0,
        migrations: Sequence[Migration] = MIGRATIONS,
        missing_hint: str = "nothing recorded yet: try `memlens run script.py`",
    ) -> None:
        self.path = Path(path).expanduser()
        self.timeout = timeout
        self.readonly = readonly
        self._lock = threading.RLock()
        self._conn = open_database(
            self.path,
            write=not readonly,
            create=create and not readonly,
            timeout=timeout,
            migrations=migrations,
            missing_hint=missing_hint,
        )

    @property
    def location(self) -> str:
        return str(self.path)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database's write lock from the start."""
        if self.readonly:
            raise StoreError(f"{self.path} was opened read-only")
        with immediate(self._conn, self._lock, self.timeout) as conn:
            yield conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self: F) -> F:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
