"""The lossless archive: every original a summary replaced or an eviction removed.

An :class:`Archive` stores records by item id: the original text (zlib-compressed)
with a SHA-256 checksum of the uncompressed bytes, checked on every read, and the
item's metadata as JSON. Two implementations: :class:`InMemoryArchive` (a dict, for
one process; it compresses in batches, see :data:`COMPRESS_AFTER`) and
:class:`SQLiteArchive` (stdlib sqlite3 in WAL mode, the embedded default; one file can
be shared by every process on a machine).

To archive into the shared record store (SQLite or Redis, with versions, journal and
snapshots), pass ``memlens.context.shared.archive.RecordArchive``: it implements this
protocol over ``memlens.store.records``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from memlens.core.errors import StoreError


@dataclass(frozen=True)
class ArchivedItem:
    """One archived original."""

    item_id: str
    content: str
    meta: dict[str, Any]
    checksum: str


def encode(content: str) -> tuple[bytes, str]:
    """Compressed bytes and the SHA-256 hex digest of the uncompressed text."""
    raw = content.encode("utf-8", "surrogatepass")
    # level 1: most of zlib's saving on text at a fraction of level 6's time
    return zlib.compress(raw, 1), hashlib.sha256(raw).hexdigest()


def _checksum(content: str) -> str:
    """The SHA-256 hex digest of the text's UTF-8 bytes (what :func:`encode` gives)."""
    return hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()


def decode(item_id: str, blob: bytes, checksum: str) -> str:
    """The original text; :class:`StoreError` if it does not match its checksum."""
    try:
        raw = zlib.decompress(blob)
    except zlib.error as exc:
        raise StoreError(f"archived item {item_id!r} is corrupt: {exc}") from None
    if hashlib.sha256(raw).hexdigest() != checksum:
        raise StoreError(f"archived item {item_id!r} failed its checksum")
    return raw.decode("utf-8", "surrogatepass")


@runtime_checkable
class Archive(Protocol):
    """Where originals go. ``put`` never overwrites an id with different content."""

    def put(self, item_id: str, content: str, meta: dict[str, Any]) -> str:
        """Store an original; returns its checksum."""
        ...

    def get(self, item_id: str) -> ArchivedItem:
        """The original (checksum verified); :class:`StoreError` if unknown or corrupt."""
        ...

    def __contains__(self, item_id: object) -> bool: ...

    def ids(self) -> list[str]:
        """Every archived id, in insertion order."""
        ...


#: Writes metadata as ``json.dumps(meta, default=str)`` does, without building an
#: encoder for every item.
_META = json.JSONEncoder(default=str)

#: Characters of text an :class:`InMemoryArchive` holds uncompressed before it
#: compresses them all: a one-off fit archives strings its caller still holds (the
#: same objects, so keeping them costs no memory, while compressing them would cost
#: time and a second copy); a long-lived memory's archive stays bounded.
COMPRESS_AFTER = 8 * 1024 * 1024


class InMemoryArchive:
    """An archive in a dict, checksummed like the SQLite one; texts are compressed in
    batches once more than ``compress_after`` characters wait (see :meth:`compact`).

    A text put with :meth:`put_deferred` is checksummed only when first needed (read,
    compressed, or put again): until then it is the caller's own immutable ``str``,
    which no checksum could catch changing, and a fit that archives thousands of
    originals it never reads back skips hashing them."""

    def __init__(self, compress_after: int = COMPRESS_AFTER) -> None:
        #: id -> (zlib bytes, or the text itself until compacted; checksum, "" while
        #: deferred; meta JSON)
        self._rows: dict[str, tuple[bytes | str, str, str]] = {}
        self._lock = threading.Lock()
        self.compress_after = compress_after
        self._waiting = 0

    def put(self, item_id: str, content: str, meta: dict[str, Any]) -> str:
        checksum = _checksum(content)
        self._put(item_id, content, meta, checksum)
        return checksum

    def put_deferred(self, item_id: str, content: str, meta: dict[str, Any]) -> None:
        """:meth:`put` without the checksum now (see the class's doc): the same record
        once read, the same error for a different text under a known id."""
        self._put(item_id, content, meta, "")

    def _put(self, item_id: str, content: str, meta: dict[str, Any], checksum: str) -> None:
        with self._lock:
            old = self._rows.get(item_id)
            if old is not None:
                if self._checksum_of(old) != (checksum or _checksum(content)):
                    raise StoreError(f"archive already holds a different {item_id!r}")
                return
            # the metadata is written out now: later changes to the caller's objects
            # never reach the archive
            self._rows[item_id] = (content, checksum, _META.encode(meta))
            self._waiting += len(content)
            if self._waiting > self.compress_after:
                self._compact()

    @staticmethod
    def _checksum_of(row: tuple[bytes | str, str, str]) -> str:
        body, checksum, _ = row
        # only a text still uncompressed can have its checksum deferred
        return checksum or _checksum(body if isinstance(body, str) else "")

    def compact(self) -> None:
        """Compress every text not compressed yet."""
        with self._lock:
            self._compact()

    def _compact(self) -> None:
        for item_id, (body, checksum, meta) in self._rows.items():
            if isinstance(body, str):
                blob, digest = encode(body)
                self._rows[item_id] = (blob, checksum or digest, meta)
        self._waiting = 0

    def get(self, item_id: str) -> ArchivedItem:
        row = self._rows.get(item_id)
        if row is None:
            raise StoreError(f"no archived item {item_id!r}")
        body, checksum, meta = row
        if isinstance(body, str):
            if not checksum:
                checksum = _checksum(body)
                with self._lock:
                    if self._rows.get(item_id) is row:
                        self._rows[item_id] = (body, checksum, meta)
            elif _checksum(body) != checksum:
                raise StoreError(f"archived item {item_id!r} failed its checksum")
            content = body
        else:
            content = decode(item_id, body, checksum)
        return ArchivedItem(item_id, content, json.loads(meta), checksum)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._rows

    def ids(self) -> list[str]:
        return list(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS memlens_archive (
    item_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    content BLOB NOT NULL,
    checksum TEXT NOT NULL,
    meta TEXT NOT NULL
)
"""


class SQLiteArchive:
    """An archive in one SQLite file (WAL, busy timeout), stdlib only."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=10, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open archive {self.path}: {exc}") from None
        self._lock = threading.Lock()

    def put(self, item_id: str, content: str, meta: dict[str, Any]) -> str:
        blob, checksum = encode(content)
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT checksum FROM memlens_archive WHERE item_id = ?", (item_id,)
                ).fetchone()
                if row is not None:
                    if row[0] != checksum:
                        raise StoreError(f"archive already holds a different {item_id!r}")
                    return checksum
                seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM memlens_archive")
                self._db.execute(
                    "INSERT INTO memlens_archive VALUES (?, ?, ?, ?, ?)",
                    (item_id, seq.fetchone()[0], blob, checksum, json.dumps(meta, default=str)),
                )
                self._db.commit()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write archive {self.path}: {exc}") from None
        return checksum

    def get(self, item_id: str) -> ArchivedItem:
        rows = self._query(
            "SELECT content, checksum, meta FROM memlens_archive WHERE item_id = ?", (item_id,)
        )
        row = rows[0] if rows else None
        if row is None:
            raise StoreError(f"no archived item {item_id!r} in {self.path}")
        blob, checksum, meta = row
        return ArchivedItem(item_id, decode(item_id, blob, checksum), json.loads(meta), checksum)

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read archive {self.path}: {exc}") from None

    def __contains__(self, item_id: object) -> bool:
        return bool(self._query("SELECT 1 FROM memlens_archive WHERE item_id = ?", (item_id,)))

    def ids(self) -> list[str]:
        return [r[0] for r in self._query("SELECT item_id FROM memlens_archive ORDER BY seq")]

    def __len__(self) -> int:
        return len(self.ids())

    def close(self) -> None:
        with self._lock:
            self._db.close()
