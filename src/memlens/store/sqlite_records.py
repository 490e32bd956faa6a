"""The record store in SQLite (same file and schema history as the session store).

A write is one ``BEGIN IMMEDIATE`` transaction: read the key's version, compare,
write the record and append its journal entry. The write lock is taken up front, so
two processes comparing at the same moment queue rather than both succeeding.
Sequence numbers are the journal table's ``AUTOINCREMENT`` ids: increasing within
each namespace (and across them).
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from memlens.core.errors import StoreError
from memlens.store.records import (
    DEFAULT_KEEP_SNAPSHOTS,
    CorruptRecordError,
    Damage,
    JournalEntry,
    JournalScan,
    PutRequest,
    Record,
    RecordScan,
    RecordStoreBase,
    SnapshotInfo,
    VersionConflict,
    check_name,
    check_restorable,
    decode_indexed,
    decode_record,
    decode_snapshot,
    dumps,
    encode_snapshot,
    encode_write,
)
from memlens.store.sqlite_db import SqliteFile, reason


class SqliteRecordStore(SqliteFile, RecordStoreBase):
    """A :class:`~memlens.store.records.RecordStore` in one SQLite file.

    ``create=False`` refuses to create a missing file; ``readonly=True`` never creates
    or changes anything (for ``memlens memory check``). Safe to share between
    threads; use one instance per process (reopen after ``fork``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        readonly: bool = False,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(
            path,
            create=create,
            readonly=readonly,
            timeout=timeout,
            missing_hint="no memory stored yet",
        )
        self._has_tables = bool(
            self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'"
            ).fetchone()
        )

    # -- plumbing ------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with super()._write() as conn:
                yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write {self.path}: {reason(exc)}") from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> builtins.list[Any]:
        if not self._has_tables:
            return []
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read {self.path}: {reason(exc)}") from exc

    @staticmethod
    def _decode_row(namespace: str, key: str, version: int, body: str) -> Record | Damage:
        return decode_indexed(body, namespace, key, version)

    # -- writing -------------------------------------------------------------------
    def put_many(
        self, namespace: str, requests: Sequence[PutRequest], *, writer: str = ""
    ) -> builtins.list[Record | VersionConflict]:
        check_name("namespace", namespace)
        for request in requests:
            check_name("key", request.key)
            if not request.delete:
                dumps(request.value)  # fail before taking the lock
        out: builtins.list[Record | VersionConflict] = []
        with self._write() as conn:
            for request in requests:
                out.append(self._put_one(conn, namespace, request, writer))
        return out

    def _put_one(
        self, conn: sqlite3.Connection, namespace: str, request: PutRequest, writer: str
    ) -> Record | VersionConflict:
        row = conn.execute(
            "SELECT version, body FROM records WHERE namespace = ? AND key = ?",
            (namespace, request.key),
        ).fetchone()
        current = int(row[0]) if row else 0
        if request.expected_version is not None and request.expected_version != current:
            found = self._decode_row(namespace, request.key, current, row[1]) if row else None
            return VersionConflict(
                namespace,
                request.key,
                request.expected_version,
                found if isinstance(found, Record) else None,
            )
        record, body = encode_write(namespace, request, current + 1, writer)
        conn.execute(
            "INSERT OR REPLACE INTO records (namespace, key, version, deleted, body) "
            "VALUES (?, ?, ?, ?, ?)",
            (namespace, request.key, record.version, int(record.deleted), body),
        )
        conn.execute(
            "INSERT INTO record_journal (namespace, key, version, body) VALUES (?, ?, ?, ?)",
            (namespace, request.key, record.version, body),
        )
        return record

    def replace_all(
        self,
        namespace: str,
        records: Mapping[str, Record],
        *,
        expected_head: int | None = None,
        preserve: Iterable[str] = (),
    ) -> None:
        check_restorable(namespace, records)
        with self._write() as conn:
            if expected_head is not None:
                head = self._head(conn, namespace)
                if head != expected_head:
                    raise VersionConflict(namespace, "*", expected_head, None)
            kept = sorted(set(preserve) - set(records))
            marks = ",".join("?" * len(kept))
            conn.execute(
                "DELETE FROM records WHERE namespace = ?"
                + (f" AND key NOT IN ({marks})" if kept else ""),
                (namespace, *kept),
            )
            conn.executemany(
                "INSERT INTO records (namespace, key, version, deleted, body) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (namespace, r.key, r.version, int(r.deleted), dumps(r.to_dict()))
                    for r in records.values()
                ],
            )

    def drop(self, namespace: str) -> None:
        with self._write() as conn:
            for table in ("records", "record_journal", "record_snapshots"):
                conn.execute(f"DELETE FROM {table} WHERE namespace = ?", (namespace,))

    # -- reading -------------------------------------------------------------------
    def get(self, namespace: str, key: str) -> Record | None:
        rows = self._read(
            "SELECT version, body FROM records WHERE namespace = ? AND key = ?", (namespace, key)
        )
        if not rows:
            return None
        found = self._decode_row(namespace, key, int(rows[0][0]), rows[0][1])
        if isinstance(found, Damage):
            raise CorruptRecordError(found)
        return found

    def scan(self, namespace: str) -> RecordScan:
        out = RecordScan()
        for key, version, body in self._read(
            "SELECT key, version, body FROM records WHERE namespace = ? ORDER BY key",
            (namespace,),
        ):
            found = self._decode_row(namespace, key, int(version), body)
            if isinstance(found, Damage):
                out.damaged.append(found)
            else:
                out.records[key] = found
        return out

    def keys(self, namespace: str) -> builtins.list[str]:
        return [
            str(r[0])
            for r in self._read(
                "SELECT key FROM records WHERE namespace = ? AND deleted = 0 ORDER BY key",
                (namespace,),
            )
        ]

    def namespaces(self) -> builtins.list[str]:
        rows = self._read(
            "SELECT namespace FROM records UNION SELECT namespace FROM record_journal "
            "UNION SELECT namespace FROM record_snapshots ORDER BY 1"
        )
        return [str(r[0]) for r in rows]

    def _head(self, conn: sqlite3.Connection, namespace: str) -> int:
        row = conn.execute(
            "SELECT max(seq) FROM record_journal WHERE namespace = ?", (namespace,)
        ).fetchone()
        return int(row[0] or 0)

    def head(self, namespace: str) -> int:
        rows = self._read("SELECT max(seq) FROM record_journal WHERE namespace = ?", (namespace,))
        return int(rows[0][0] or 0) if rows else 0

    def journal(self, namespace: str, *, after: int = 0) -> JournalScan:
        out = JournalScan()
        for seq, key, version, body in self._read(
            "SELECT seq, key, version, body FROM record_journal WHERE namespace = ? AND seq > ? "
            "ORDER BY seq",
            (namespace, int(after)),
        ):
            found = decode_record(body, namespace, "journal", str(seq))
            if isinstance(found, Record) and (found.key != key or found.version != version):
                found = Damage(namespace, "journal", str(seq), "index disagrees with the entry")
            if isinstance(found, Damage):
                out.damaged.append(found)
            else:
                out.entries.append(JournalEntry(int(seq), found))
        return out

    # -- snapshots -----------------------------------------------------------------
    def snapshot(self, namespace: str, *, keep: int = DEFAULT_KEEP_SNAPSHOTS) -> SnapshotInfo:
        if keep < 1:
            raise StoreError("keep must be at least 1 snapshot")
        with self._write() as conn:
            # Inside the write lock: the records and the journal position agree.
            scan = self.scan(namespace)
            if scan.damaged:
                raise CorruptRecordError(scan.damaged[0])
            head = self._head(conn, namespace)
            body, digest = encode_snapshot(scan.records.values())
            taken = time.time()
            cur = conn.execute(
                "INSERT INTO record_snapshots (namespace, taken_at, journal_seq, count, "
                "checksum, body) VALUES (?, ?, ?, ?, ?, ?)",
                (namespace, taken, head, len(scan.records), digest, body),
            )
            snap_id = int(cur.lastrowid or 0)
            kept = [
                (int(r[0]), int(r[1]))
                for r in conn.execute(
                    "SELECT id, journal_seq FROM record_snapshots WHERE namespace = ? "
                    "ORDER BY id DESC LIMIT ?",
                    (namespace, keep),
                )
            ]
            oldest_id, oldest_seq = kept[-1]
            conn.execute(
                "DELETE FROM record_snapshots WHERE namespace = ? AND id < ?",
                (namespace, oldest_id),
            )
            # The oldest kept snapshot plus the journal after it rebuilds everything.
            conn.execute(
                "DELETE FROM record_journal WHERE namespace = ? AND seq <= ?",
                (namespace, oldest_seq),
            )
        return SnapshotInfo(snap_id, namespace, taken, head, len(scan.records), digest)

    def snapshots(self, namespace: str) -> builtins.list[SnapshotInfo]:
        return [
            SnapshotInfo(int(r[0]), namespace, float(r[1]), int(r[2]), int(r[3]), str(r[4]))
            for r in self._read(
                "SELECT id, taken_at, journal_seq, count, checksum FROM record_snapshots "
                "WHERE namespace = ? ORDER BY id DESC",
                (namespace,),
            )
        ]

    def load_snapshot(self, namespace: str, snapshot_id: int) -> dict[str, Record]:
        rows = self._read(
            "SELECT checksum, body FROM record_snapshots WHERE namespace = ? AND id = ?",
            (namespace, int(snapshot_id)),
        )
        if not rows:
            raise StoreError(f"no snapshot {snapshot_id} of {namespace} in {self.path}")
        return decode_snapshot(rows[0][1], rows[0][0], namespace, str(snapshot_id))
