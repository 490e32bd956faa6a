"""Keyed, versioned, checksummed records: the store behind shared and context memory.

A *record store* keeps JSON values under ``(namespace, key)``; a namespace is usually
one memory session. It is the storage half of memory sync and recovery; merge
strategies live above it (``memlens.context.shared``). Two backends implement the
same :class:`RecordStore` protocol: SQLite (``sqlite:///path``, embedded, WAL) and
Redis (``redis://host:port/db``, the ``redis`` extra). Open either with
:func:`memlens.store.open_record_store`.

What every backend guarantees:

- **Versions.** Each key's version starts at 1 and grows by one on every write,
  deletes included (a delete leaves a *tombstone* record, ``deleted=True``), so a
  version never goes back and a newer version always wins a merge.
- **Compare-and-set.** ``put(..., expected_version=n)`` writes only if the stored
  version is still ``n`` (``0``: the key must not exist yet) and otherwise raises
  :class:`VersionConflict` carrying the record that is there. ``expected_version=None``
  writes over whatever is there (still atomically: no write is lost, it is just the
  newest). SQLite does this in a ``BEGIN IMMEDIATE`` transaction, Redis in a Lua script.
- **Checksums.** Each record carries the SHA-256 of its canonical form (namespace,
  key, version, deletion, value, update time, writer). Reads verify it; a record that
  fails raises :class:`CorruptRecordError` from ``get``/``list``. ``scan`` never
  raises for damage: it returns what reads and a :class:`Damage` for each thing
  that does not, so nothing is ever skipped silently.
- **Journal.** Every write appends a :class:`JournalEntry` (a full copy of the new
  record with a per-namespace sequence number ``seq``) in the same atomic step.
  ``journal(ns, after=seq)`` returns the incremental updates since ``seq``.
- **Snapshots.** ``snapshot(ns)`` stores every current record of a namespace as one
  checksummed blob tagged with the journal position it covers; the newest ``keep``
  snapshots are kept and journal entries older than the oldest kept snapshot are
  pruned. A snapshot plus the journal after it rebuilds the namespace exactly.

Example::

    from memlens.store import open_record_store
    from memlens.store.records import VersionConflict

    store = open_record_store("sqlite:///memory.db")      # or "redis://localhost:6379/0"
    rec = store.put("sess-1", "user.prefs", {"tone": "terse"}, writer="worker-a")
    try:
        store.put("sess-1", "user.prefs", {"tone": "chatty"}, expected_version=rec.version)
    except VersionConflict as conflict:
        print("someone else wrote version", conflict.current.version)
    store.snapshot("sess-1")
    print(store.journal("sess-1").entries[-1].seq)

Timestamps are UNIX seconds (UTC) as floats. Values must be JSON-serializable
(``allow_nan=False``); anything else raises :class:`~memlens.core.errors.StoreError`.
"""

from __future__ import annotations

import builtins
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from memlens.core.digest import sha256_hex
from memlens.core.errors import StoreError

#: How many snapshots a namespace keeps unless told otherwise.
DEFAULT_KEEP_SNAPSHOTS = 5


class CorruptRecordError(StoreError):
    """A record, journal entry or snapshot failed its checksum or could not be decoded."""

    def __init__(self, damage: Damage) -> None:
        super().__init__(damage.describe())
        self.damage = damage


class StoreUnavailableError(StoreError):
    """The store cannot be reached right now (Redis down, network cut); retry later."""


class VersionConflict(StoreError):
    """A compare-and-set write found another version than it expected."""

    def __init__(self, namespace: str, key: str, expected: int, current: Record | None) -> None:
        found = current.version if current is not None else 0
        super().__init__(
            f"version conflict on {namespace}/{key}: expected version {expected}, found {found}"
        )
        self.namespace = namespace
        self.key = key
        self.expected = expected
        self.current = current


@dataclass(frozen=True)
class Record:
    """One stored value and its bookkeeping. ``deleted`` records are tombstones."""

    namespace: str
    key: str
    value: Any
    version: int
    updated_at: float
    writer: str
    deleted: bool = False
    checksum: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ns": self.namespace,
            "k": self.key,
            "v": self.version,
            "d": self.deleted,
            "val": self.value,
            "at": self.updated_at,
            "w": self.writer,
            "sum": self.checksum,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """Rebuild a record; ``KeyError``/``TypeError``/``ValueError`` if malformed."""
        return cls(
            namespace=str(data["ns"]),
            key=str(data["k"]),
            value=data["val"],
            version=int(data["v"]),
            updated_at=float(data["at"]),
            writer=str(data["w"]),
            deleted=bool(data["d"]),
            checksum=str(data["sum"]),
        )

    def is_intact(self) -> bool:
        """True if the checksum matches the record's content."""
        try:
            return self.checksum == record_checksum(
                self.namespace,
                self.key,
                self.version,
                self.deleted,
                self.value,
                self.updated_at,
                self.writer,
            )
        except StoreError:
            return False


@dataclass(frozen=True)
class JournalEntry:
    """One write as it was journaled: the record it produced and its sequence number."""

    seq: int
    record: Record


@dataclass(frozen=True)
class Damage:
    """Something stored that does not read back intact.

    ``where`` is ``"record"``, ``"journal"`` or ``"snapshot"``; ``ref`` is the key, the
    journal sequence number or the snapshot id.
    """

    namespace: str
    where: str
    ref: str
    reason: str

    def describe(self) -> str:
        return f"{self.where} {self.ref!s} of {self.namespace} is corrupted: {self.reason}"


@dataclass(frozen=True)
class SnapshotInfo:
    """A stored snapshot: covers the journal up to and including ``journal_seq``."""

    id: int
    namespace: str
    taken_at: float
    journal_seq: int
    count: int
    checksum: str


@dataclass
class RecordScan:
    """Everything a namespace holds that reads back intact, and what does not."""

    records: dict[str, Record] = field(default_factory=dict)
    damaged: list[Damage] = field(default_factory=list)


@dataclass
class JournalScan:
    """Journal entries in sequence order, and the entries that failed to read."""

    entries: list[JournalEntry] = field(default_factory=list)
    damaged: list[Damage] = field(default_factory=list)


@dataclass(frozen=True)
class PutRequest:
    """One write of a batch (see :meth:`RecordStore.put_many`); ``value`` ignored if deleting."""

    key: str
    value: Any = None
    expected_version: int | None = None
    delete: bool = False
    updated_at: float | None = None


@runtime_checkable
class RecordStore(Protocol):
    """Versioned keyed records per namespace; see the module docstring for the contract."""

    @property
    def location(self) -> str:
        """Where the store lives, for messages (a path or a URL without password)."""
        ...

    def get(self, namespace: str, key: str) -> Record | None:
        """The record (tombstones included) or ``None``; ``CorruptRecordError`` if damaged."""
        ...

    def put(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        expected_version: int | None = None,
        writer: str = "",
        updated_at: float | None = None,
    ) -> Record:
        """Write ``value``; ``VersionConflict`` if ``expected_version`` is stale."""
        ...

    def delete(
        self,
        namespace: str,
        key: str,
        *,
        expected_version: int | None = None,
        writer: str = "",
    ) -> Record:
        """Write a tombstone (a new version with ``deleted=True``) and return it."""
        ...

    def put_many(
        self, namespace: str, requests: Sequence[PutRequest], *, writer: str = ""
    ) -> builtins.list[Record | VersionConflict]:
        """Each request is compare-and-set on its own; one round trip for the batch.

        Returns, in order, the written record or the :class:`VersionConflict` (not raised).
        """
        ...

    def list(self, namespace: str, *, include_deleted: bool = False) -> builtins.list[Record]:
        """Every record of the namespace, by key; ``CorruptRecordError`` on the first damage."""
        ...

    def keys(self, namespace: str) -> builtins.list[str]:
        """Live keys (no tombstones), sorted, without reading or verifying any value."""
        ...

    def scan(self, namespace: str) -> RecordScan:
        """All records, tombstones included, plus a :class:`Damage` for each unreadable one."""
        ...

    def namespaces(self) -> builtins.list[str]:
        """Every namespace that has records, a journal or snapshots, sorted."""
        ...

    def head(self, namespace: str) -> int:
        """The sequence number of the newest journal entry (0 if none)."""
        ...

    def journal(self, namespace: str, *, after: int = 0) -> JournalScan:
        """Journal entries with ``seq > after`` in order (entries pruned by snapshots are gone)."""
        ...

    def snapshot(self, namespace: str, *, keep: int = DEFAULT_KEEP_SNAPSHOTS) -> SnapshotInfo:
        """Store the namespace's current records; refuses (``CorruptRecordError``) if damaged."""
        ...

    def snapshots(self, namespace: str) -> builtins.list[SnapshotInfo]:
        """Stored snapshots, newest first (damaged ones included: loading them raises)."""
        ...

    def load_snapshot(self, namespace: str, snapshot_id: int) -> dict[str, Record]:
        """A snapshot's records by key; ``CorruptRecordError`` if it fails its checksum."""
        ...

    def replace_all(
        self,
        namespace: str,
        records: Mapping[str, Record],
        *,
        expected_head: int | None = None,
        preserve: Iterable[str] = (),
    ) -> None:
        """Make the namespace hold exactly ``records`` (recovery's write-back).

        Records keep their versions and checksums and are not journaled again (the
        journal already has them). ``expected_head`` makes it conditional on no write
        having happened since (``VersionConflict`` otherwise). Keys in ``preserve``
        are left exactly as stored (damaged records nothing could replace).
        """
        ...

    def drop(self, namespace: str) -> None:
        """Remove the namespace entirely: records, journal and snapshots."""
        ...

    def close(self) -> None:
        """Release connections; the store can't be used afterwards."""
        ...


class RecordStoreBase:
    """The calls every backend derives from ``put_many`` and ``scan`` (one place for both)."""

    def put_many(
        self, namespace: str, requests: Sequence[PutRequest], *, writer: str = ""
    ) -> builtins.list[Record | VersionConflict]:
        raise NotImplementedError

    def scan(self, namespace: str) -> RecordScan:
        raise NotImplementedError

    def _one(self, namespace: str, request: PutRequest, writer: str) -> Record:
        result = self.put_many(namespace, [request], writer=writer)[0]
        if isinstance(result, VersionConflict):
            raise result
        return result

    def put(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        expected_version: int | None = None,
        writer: str = "",
        updated_at: float | None = None,
    ) -> Record:
        """Write ``value``; ``VersionConflict`` if ``expected_version`` is stale."""
        return self._one(
            namespace, PutRequest(key, value, expected_version, updated_at=updated_at), writer
        )

    def delete(
        self,
        namespace: str,
        key: str,
        *,
        expected_version: int | None = None,
        writer: str = "",
    ) -> Record:
        """Write a tombstone (a new version with ``deleted=True``) and return it."""
        return self._one(namespace, PutRequest(key, None, expected_version, delete=True), writer)

    def list(self, namespace: str, *, include_deleted: bool = False) -> builtins.list[Record]:
        """Every record of the namespace, by key; ``CorruptRecordError`` on the first damage."""
        scan = self.scan(namespace)
        if scan.damaged:
            raise CorruptRecordError(scan.damaged[0])
        return [r for r in scan.records.values() if include_deleted or not r.deleted]


# -- canonical form and checksums (shared by every backend) ------------------------------


def dumps(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, no NaN; ``StoreError`` if not serializable."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"value is not JSON-serializable: {exc}") from exc


def record_checksum(
    namespace: str,
    key: str,
    version: int,
    deleted: bool,
    value: Any,
    updated_at: float,
    writer: str,
) -> str:
    """SHA-256 over everything a record says, so any changed byte is detected."""
    canonical = dumps([namespace, key, int(version), bool(deleted), value, updated_at, writer])
    return sha256_hex(canonical.encode("utf-8"))


def make_record(
    namespace: str,
    key: str,
    value: Any,
    version: int,
    *,
    writer: str,
    deleted: bool = False,
    updated_at: float | None = None,
) -> Record:
    """A new record with its checksum computed."""
    at = time.time() if updated_at is None else float(updated_at)
    if not math.isfinite(at):
        raise StoreError(f"invalid update time {updated_at!r}")
    stored_value = None if deleted else value
    digest = record_checksum(namespace, key, version, deleted, stored_value, at, writer)
    return Record(namespace, key, stored_value, version, at, writer, deleted, digest)


def encode_write(
    namespace: str, request: PutRequest, version: int, writer: str
) -> tuple[Record, str]:
    """The record a write makes at ``version``, and its stored form (JSON)."""
    record = make_record(
        namespace,
        request.key,
        request.value,
        version,
        writer=writer,
        deleted=request.delete,
        updated_at=request.updated_at,
    )
    return record, dumps(record.to_dict())


def check_restorable(namespace: str, records: Mapping[str, Record]) -> None:
    """Recovery writes back only intact records of this namespace, each under its key."""
    check_name("namespace", namespace)
    for key, record in records.items():
        if record.key != key or record.namespace != namespace or not record.is_intact():
            raise StoreError(f"refusing to restore {namespace}/{key}: record is not intact")


def decode_record(text: str | bytes, namespace: str, where: str, ref: str) -> Record | Damage:
    """Parse a stored record (``Record.to_dict`` as JSON) and verify it, or say why not."""
    try:
        data = json.loads(text)
        record = Record.from_dict(data)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        return Damage(namespace, where, ref, f"cannot be decoded ({type(exc).__name__})")
    if record.namespace != namespace:
        return Damage(namespace, where, ref, f"belongs to namespace {record.namespace!r}")
    if not record.is_intact():
        return Damage(namespace, where, ref, "checksum mismatch")
    return record


def decode_indexed(
    text: str | bytes, namespace: str, key: str, version: int | None
) -> Record | Damage:
    """A stored record, verified, and checked against the key and version it is indexed by."""
    found = decode_record(text, namespace, "record", key)
    if isinstance(found, Damage):
        return found
    if found.key != key:
        return Damage(namespace, "record", key, f"holds the record of {found.key!r}")
    if found.version != version:
        return Damage(namespace, "record", key, "version index disagrees with the record")
    return found


def encode_snapshot(records: Iterable[Record]) -> tuple[str, str]:
    """Snapshot body (JSON list of records, by key) and its SHA-256."""
    body = dumps([r.to_dict() for r in sorted(records, key=lambda r: r.key)])
    return body, sha256_hex(body.encode("utf-8"))


def decode_snapshot(
    body: str | bytes, checksum: str, namespace: str, ref: str
) -> dict[str, Record]:
    """Verify and parse a snapshot body; ``CorruptRecordError`` naming what failed."""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if sha256_hex(raw) != checksum:
        raise CorruptRecordError(Damage(namespace, "snapshot", ref, "checksum mismatch"))
    out: dict[str, Record] = {}
    try:
        items = json.loads(raw)
        for item in items:
            record = Record.from_dict(item)
            if not record.is_intact() or record.namespace != namespace:
                raise ValueError(f"record {record.key!r} fails its checksum")
            out[record.key] = record
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CorruptRecordError(Damage(namespace, "snapshot", ref, str(exc))) from exc
    return out


def check_name(what: str, name: str) -> str:
    """Namespaces and keys are non-empty strings without NUL (they end up in Redis keys)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise StoreError(f"invalid {what} {name!r}: expected a non-empty string without NUL")
    return name
