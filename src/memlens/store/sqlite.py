"""The embedded session store: one SQLite file, safe for several processes.

Why it is shaped this way:

- WAL mode lets readers run while one process writes, and ``BEGIN IMMEDIATE``
  takes the write lock up front so two writers queue instead of deadlocking.
- A busy timeout plus a retry loop on "database is locked" means two processes
  saving at the same time both succeed; nothing is dropped.
- Summary columns (name, status, peak RSS…) are plain columns, so listing never
  decodes session data. The session and its series are separate checksummed blobs:
  a corrupted blob spoils only its own session, and exporting samples decodes only
  the series.
- A file that fails to open is reported, never recreated or "repaired": the user's
  data stays as it was.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from memlens.core.errors import NotFoundError, StoreError
from memlens.core.series import Series
from memlens.core.session import Session
from memlens.store import codec, monitor_history
from memlens.store.base import LATEST, SessionRow, series_from, session_from
from memlens.store.migrations import MIGRATIONS, Migration
from memlens.store.sqlite_db import SqliteFile, is_busy, reason, retry

T = TypeVar("T")

_SUMMARY_COLUMNS = (
    "id, name, kind, status, started_at, duration, peak_rss, growth, saved_at, "
    "length(body) + length(series)"
)


class SqliteStore(SqliteFile):
    """A :class:`~memlens.store.base.SessionStore` in one SQLite file.

    ``create=False`` refuses to create a missing file; ``readonly=True`` opens it
    read-only for commands that only read: nothing is created, migrated or changed,
    and a file that is not memlens's is refused (see :mod:`memlens.store.sqlite_db`).
    ``timeout`` bounds how long a call waits for another process's write lock.
    Safe to share between threads of one process; use one instance per process.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        readonly: bool = False,
        timeout: float = 30.0,
        migrations: tuple[Migration, ...] = MIGRATIONS,
    ) -> None:
        super().__init__(
            path, create=create, readonly=readonly, timeout=timeout, migrations=migrations
        )

    def _retry(self, fn: Callable[[], T]) -> T:
        """Call ``fn``, retrying while another process holds the lock."""
        return retry(fn, self.timeout)

    # -- writing -------------------------------------------------------------------
    def save(self, session: Session) -> str:
        """Store ``session`` (replacing one with the same id); return its id."""
        data = session.to_dict()
        series = data.pop("series")
        body_blob, body_sum = codec.encode(data)
        series_blob, series_sum = codec.encode(series)
        row = (
            session.id,
            session.name,
            session.kind,
            session.status,
            session.metadata.started_at,
            float(session.duration),
            int(session.peak_rss),
            int(session.growth),
            _now(),
            codec.CODEC,
            body_blob,
            body_sum,
            series_blob,
            series_sum,
        )
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO sessions (id, name, kind, status, started_at, "
                    "duration, peak_rss, growth, saved_at, codec, body, body_sha256, series, "
                    "series_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot save session {session.id} to {self.path}: {reason(exc)}"
            ) from exc
        return session.id

    def save_analysis(self, session_id: str, key: str, result: Any) -> None:
        """Set ``analyses[key] = result`` on a stored session without rewriting its series."""
        try:
            with self._write() as conn:
                full_id = self._resolve(session_id)
                fetched = conn.execute(
                    "SELECT codec, body, body_sha256 FROM sessions WHERE id = ?", (full_id,)
                ).fetchone()
                data = codec.decode(fetched[1], fetched[2], fetched[0], f"session {full_id} data")
                data.setdefault("analyses", {})[key] = result
                try:
                    blob, digest = codec.encode(data)
                except (TypeError, ValueError) as exc:
                    raise StoreError(f"analysis {key!r} is not JSON-serializable: {exc}") from exc
                conn.execute(
                    "UPDATE sessions SET body = ?, body_sha256 = ?, codec = ?, saved_at = ? "
                    "WHERE id = ?",
                    (blob, digest, codec.CODEC, _now(), full_id),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot update session {session_id}: {reason(exc)}") from exc

    def delete(self, session_id: str) -> str:
        """Delete one session; return its full id."""
        try:
            with self._write() as conn:
                full_id = self._resolve(session_id)
                conn.execute("DELETE FROM sessions WHERE id = ?", (full_id,))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot delete session {session_id}: {reason(exc)}") from exc
        # A monitor's history file would bring the session back at the next open.
        monitor_history.forget(str(self.path), full_id)
        return full_id

    # -- reading -------------------------------------------------------------------
    def resolve(self, session_id: str) -> str:
        """Expand a full id, a unique prefix, a unique suffix or ``latest``."""
        with self._lock:
            try:
                return self._resolve(session_id)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read {self.path}: {reason(exc)}") from exc

    def _resolve(self, session_id: str) -> str:
        key = session_id.strip()
        if not key:
            raise NotFoundError("empty session id")
        conn = self._conn
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (key,)).fetchone():
            return key
        if key == LATEST:
            # Before any partial match: "latest" must never pick "monitor-web-latest".
            row = conn.execute(
                "SELECT id FROM sessions ORDER BY started_at DESC, saved_at DESC LIMIT 1"
            ).fetchone()
            if row:
                return str(row[0])
            raise NotFoundError(f"no sessions in {self.path}, so no 'latest'")
        escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM sessions WHERE id LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\' "
                "ORDER BY started_at DESC LIMIT 6",
                (escaped + "%", "%" + escaped),
            )
        ]
        if len(matches) == 1:
            return matches[0]
        if matches:
            shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
            raise NotFoundError(f"session id {key!r} is ambiguous: matches {shown}")
        raise NotFoundError(f"no session {key!r} in {self.path} (see `memlens sessions`)")

    def _blob(self, full_id: str, which: str) -> Any:
        column = {"body": ("body", "body_sha256"), "series": ("series", "series_sha256")}[which]
        what = f"session {full_id} {'data' if which == 'body' else 'samples'}"
        try:
            row = self._conn.execute(
                f"SELECT codec, {column[0]}, {column[1]} FROM sessions WHERE id = ?", (full_id,)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{what} cannot be read: {reason(exc)}") from exc
        if row is None:
            raise NotFoundError(f"no session {full_id!r} in {self.path}")
        return codec.decode(bytes(row[1]), row[2], row[0], what)

    def load(self, session_id: str) -> Session:
        """Return the stored session; ``StoreError`` if its data is corrupted."""
        with self._lock:
            full_id = self.resolve(session_id)
            data = self._blob(full_id, "body")
            data["series"] = self._blob(full_id, "series")
        return session_from(data, full_id)

    def samples(self, session_id: str) -> Series:
        """Only the session's series: decodes one blob instead of two."""
        with self._lock:
            full_id = self.resolve(session_id)
            data = self._blob(full_id, "series")
        return series_from(data, full_id)

    def list(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        verify: bool = True,
    ) -> builtins.list[SessionRow]:
        """Summary rows, newest first. ``verify`` checks every blob's checksum."""
        where, params = [], []
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        sql = f"SELECT {_SUMMARY_COLUMNS} FROM sessions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, saved_at DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            try:
                raw_rows = self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                if is_busy(exc):
                    raise StoreError(f"cannot read {self.path}: {reason(exc)}") from exc
                # A damaged table page: salvage the rows that still read.
                raw_rows = self._salvage_rows(where, params, limit)
            rows = [_row(r) for r in raw_rows]
            if verify:
                rows = [self._verified(row) for row in rows]
        return rows

    def _verified(self, row: SessionRow) -> SessionRow:
        try:
            fetched = self._conn.execute(
                "SELECT codec, body, body_sha256, series, series_sha256 FROM sessions WHERE id = ?",
                (row.id,),
            ).fetchone()
        except sqlite3.DatabaseError:
            return _replace(row, corrupted=True)
        ok = (
            fetched is not None
            and fetched[0] == codec.CODEC
            and codec.checksum(bytes(fetched[1])) == fetched[2]
            and codec.checksum(bytes(fetched[3])) == fetched[4]
        )
        return row if ok else _replace(row, corrupted=True)

    def _salvage_rows(
        self, where: builtins.list[str], params: builtins.list[Any], limit: int | None
    ) -> builtins.list[tuple[Any, ...]]:
        """Read rows one rowid at a time, skipping those on damaged pages."""
        try:
            top = self._conn.execute("SELECT max(rowid) FROM sessions").fetchone()[0] or 0
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read {self.path}: {reason(exc)}") from exc
        clause = " AND ".join(["rowid = ?", *where])
        out = []
        for rowid in range(1, int(top) + 1):
            try:
                found = self._conn.execute(
                    f"SELECT {_SUMMARY_COLUMNS} FROM sessions WHERE {clause}", [rowid, *params]
                ).fetchone()
            except sqlite3.DatabaseError:
                continue
            if found is not None:
                out.append(found)
        out.sort(key=lambda r: (r[4], r[8]), reverse=True)
        return out[:limit] if limit is not None else out


def _row(r: tuple[Any, ...]) -> SessionRow:
    return SessionRow(
        id=r[0],
        name=r[1],
        kind=r[2],
        status=r[3],
        started_at=r[4],
        duration=float(r[5]),
        peak_rss=int(r[6]),
        growth=int(r[7]),
        saved_at=r[8],
        stored_bytes=int(r[9] or 0),
    )


def _replace(row: SessionRow, **changes: Any) -> SessionRow:
    from dataclasses import replace

    return replace(row, **changes)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
