"""The SQLite store's schema, as an ordered list of migrations.

Each migration moves the database from version ``n - 1`` to ``n`` and runs inside
one ``BEGIN IMMEDIATE`` transaction together with the version bump, so two
processes opening a fresh database at once cannot both apply it. Migrations are
append-only: never edit one that has shipped, add the next.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from memlens.core.errors import StoreError


@dataclass(frozen=True)
class Migration:
    """One schema step: ``version`` and the SQL statements that reach it."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "sessions with summary columns, checksummed session and series blobs",
        (
            """
            CREATE TABLE sessions (
                id            TEXT PRIMARY KEY,
                name          TEXT NOT NULL,
                kind          TEXT NOT NULL,
                status        TEXT NOT NULL,
                started_at    TEXT NOT NULL,
                duration      REAL NOT NULL,
                peak_rss      INTEGER NOT NULL,
                growth        INTEGER NOT NULL,
                saved_at      TEXT NOT NULL,
                codec         TEXT NOT NULL,
                body          BLOB NOT NULL,
                body_sha256   TEXT NOT NULL,
                series        BLOB NOT NULL,
                series_sha256 TEXT NOT NULL
            )
            """,
            "CREATE INDEX sessions_started_at ON sessions (started_at)",
            "CREATE INDEX sessions_kind ON sessions (kind)",
        ),
    ),
    Migration(
        2,
        "versioned memory records with an append-only journal and snapshots",
        (
            """
            CREATE TABLE records (
                namespace  TEXT NOT NULL,
                key        TEXT NOT NULL,
                version    INTEGER NOT NULL,
                deleted    INTEGER NOT NULL,
                body       TEXT NOT NULL,
                PRIMARY KEY (namespace, key)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE record_journal (
                seq        INTEGER PRIMARY KEY AUTOINCREMENT,
                namespace  TEXT NOT NULL,
                key        TEXT NOT NULL,
                version    INTEGER NOT NULL,
                body       TEXT NOT NULL
            )
            """,
            "CREATE INDEX record_journal_ns ON record_journal (namespace, seq)",
            """
            CREATE TABLE record_snapshots (
                id          INTEGER PRIMARY KEY AUTOINCREMENT,
                namespace   TEXT NOT NULL,
                taken_at    REAL NOT NULL,
                journal_seq INTEGER NOT NULL,
                count       INTEGER NOT NULL,
                checksum    TEXT NOT NULL,
                body        TEXT NOT NULL
            )
            """,
            "CREATE INDEX record_snapshots_ns ON record_snapshots (namespace, id)",
        ),
    ),
)

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL,
    description TEXT NOT NULL
)
"""


def current_version(conn: sqlite3.Connection) -> int:
    """The highest applied migration, 0 for a database memlens never touched."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration] = MIGRATIONS,
    location: str = "database",
) -> int:
    """Apply pending migrations in order; return the resulting version.

    ``conn`` must be in autocommit mode (``isolation_level=None``). A database
    written by a newer memlens is refused rather than touched.
    """
    latest = migrations[-1].version if migrations else 0
    if [m.version for m in migrations] != list(range(1, latest + 1)):
        raise ValueError("migrations must be numbered 1, 2, 3, … without gaps")
    version = current_version(conn)
    if version == latest:
        return version  # the common case: no write lock needed
    if version > latest:
        raise StoreError(
            f"{location} has schema version {version}, newer than this memlens "
            f"understands ({latest}); upgrade memlens"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_VERSION_TABLE)
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = current_version(conn)
        for migration in migrations:
            if migration.version <= version:
                continue
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, applied_at, description) VALUES (?, ?, ?)",
                (
                    migration.version,
                    datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    migration.description,
                ),
            )
            version = migration.version
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return version
