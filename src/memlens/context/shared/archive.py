"""The context memory's lossless archive, kept in a shared record store (SQLite or Redis).

:class:`RecordArchive` implements :class:`memlens.context.memory.archive.Archive` over
a :class:`~memlens.store.records.RecordStore`, so a ``ContextMemory`` on any worker
archives its originals where every other worker (and ``memlens memory check``) can
see them, with the store's versions, checksums, journal and snapshots::

    from memlens.context.memory import ContextMemory
    from memlens.context.shared.archive import RecordArchive
    from memlens.store import open_record_store

    archive = RecordArchive(open_record_store("redis://cache:6379/0"), "user-42")
    memory = ContextMemory(archive=archive)

Each original is one record under ``archive/<item id>`` holding the text, its
metadata and the SHA-256 of the text (checked again on every read, on top of the
record's own checksum). An id is written once (compare-and-set on "does not exist"):
putting different content under an archived id is refused, as the protocol requires.
:meth:`RecordArchive.lazy` hands out the original as a proxy read on first use.

When the store cannot be reached (Redis down), an original is kept in a local spill
instead (readable as usual) and written by :meth:`RecordArchive.flush` — the shared
context memory flushes on every sync — so a fit during an outage loses nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from memlens.context.memory.archive import ArchivedItem
from memlens.context.shared.lazy import lazy_record
from memlens.core.errors import StoreError
from memlens.store.records import RecordStore, StoreUnavailableError, VersionConflict

PREFIX = "archive/"


class RecordArchive:
    """An ``Archive`` (see ``memlens.context.memory.archive``) in a record store namespace."""

    def __init__(
        self,
        store: RecordStore | Callable[[], RecordStore],
        namespace: str,
        *,
        writer: str = "",
    ) -> None:
        # A callable is asked for the store on each use (a manager's, reopened after fork).
        self._store = store
        self.namespace = namespace
        self.writer = writer
        #: Originals archived while the store was unreachable, by id (see ``flush``).
        self.spilled: dict[str, ArchivedItem] = {}
        # Set by an unreachable write: later puts spill at once instead of each waiting
        # for a connection timeout; ``flush`` (the next sync) tries the store again.
        self._down = False

    @property
    def store(self) -> RecordStore:
        return self._store() if callable(self._store) else self._store

    @staticmethod
    def _digest(content: str) -> str:
        return hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()

    def put(self, item_id: str, content: str, meta: dict[str, Any]) -> str:
        """Archive ``content`` under ``item_id`` once; returns its SHA-256."""
        digest = self._digest(content)
        try:
            if self._down:
                raise StoreUnavailableError("the store was unreachable at the last write")
            self._write(item_id, content, meta, digest)
        except StoreUnavailableError:
            self._down = True
            spilled = self.spilled.get(item_id)
            if spilled is not None and spilled.checksum != digest:
                raise StoreError(
                    f"archived item {item_id!r} already holds different content"
                ) from None
            self.spilled[item_id] = ArchivedItem(item_id, content, dict(meta), digest)
        return digest

    def flush(self) -> int:
        """Write the spilled originals to the store; returns how many were written."""
        written = 0
        self._down = False
        for item_id, item in list(self.spilled.items()):
            self._write(item_id, item.content, item.meta, item.checksum)
            del self.spilled[item_id]
            written += 1
        return written

    def _write(self, item_id: str, content: str, meta: dict[str, Any], digest: str) -> None:
        value = {"content": content, "meta": dict(meta), "sha256": digest}
        try:
            self.store.put(
                self.namespace, PREFIX + item_id, value, expected_version=0, writer=self.writer
            )
        except VersionConflict as conflict:
            current = conflict.current
            if current is not None and not current.deleted:
                if isinstance(current.value, dict) and current.value.get("sha256") == digest:
                    return  # the same original again: nothing to do
                raise StoreError(
                    f"archived item {item_id!r} already holds different content"
                ) from None
            raise

    def get(self, item_id: str) -> ArchivedItem:
        """The original, both checksums verified; ``StoreError`` if unknown or corrupt."""
        if item_id in self.spilled:
            return self.spilled[item_id]
        record = self.store.get(self.namespace, PREFIX + item_id)
        if record is None or record.deleted:
            raise StoreError(f"no archived item {item_id!r} in {self.namespace}")
        value = record.value
        if not isinstance(value, dict) or not isinstance(value.get("content"), str):
            raise StoreError(f"archived item {item_id!r} is not an archive record")
        if self._digest(value["content"]) != value.get("sha256"):
            raise StoreError(f"archived item {item_id!r} failed its checksum")
        return ArchivedItem(
            item_id, value["content"], dict(value.get("meta") or {}), value["sha256"]
        )

    def __contains__(self, item_id: object) -> bool:
        if not isinstance(item_id, str):
            return False
        if item_id in self.spilled:
            return True
        if self._down:
            return False
        try:
            record = self.store.get(self.namespace, PREFIX + item_id)
        except StoreUnavailableError:
            return False  # unknown for now: a put spills it locally, ``get`` says why
        return record is not None and not record.deleted

    def ids(self) -> list[str]:
        """Archived ids in the order they were first archived (journal order)."""
        live = {k[len(PREFIX) :] for k in self.store.keys(self.namespace) if k.startswith(PREFIX)}
        ordered: list[str] = []
        for entry in self.store.journal(self.namespace).entries:
            key = entry.record.key
            if key.startswith(PREFIX) and key[len(PREFIX) :] in live:
                item = key[len(PREFIX) :]
                if item not in ordered:
                    ordered.append(item)
        ordered += sorted(live - set(ordered))  # journal pruned by snapshots: the rest by id
        return ordered + [i for i in self.spilled if i not in live]

    def __len__(self) -> int:
        return len(self.ids())

    def lazy(self, item_id: str) -> Any:
        """The archived record's value as a proxy, read (and verified) on first use."""
        return lazy_record(self.store, self.namespace, PREFIX + item_id)
