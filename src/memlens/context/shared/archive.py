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
"""

from __future__ import annotations

import hashlib
from typing import Any

from memlens.context.memory.archive import ArchivedItem
from memlens.context.shared.lazy import lazy_record
from memlens.core.errors import StoreError
from memlens.store.records import RecordStore, VersionConflict

PREFIX = "archive/"


class RecordArchive:
    """An ``Archive`` (see ``memlens.context.memory.archive``) in a record store namespace."""

    def __init__(self, store: RecordStore, namespace: str, *, writer: str = "") -> None:
        self.store = store
        self.namespace = namespace
        self.writer = writer

    @staticmethod
    def _digest(content: str) -> str:
        return hashlib.sha256(content.encode("utf-8", "surrogatepass")).hexdigest()

    def put(self, item_id: str, content: str, meta: dict[str, Any]) -> str:
        """Archive ``content`` under ``item_id`` once; returns its SHA-256."""
        digest = self._digest(content)
        value = {"content": content, "meta": dict(meta), "sha256": digest}
        try:
            self.store.put(
                self.namespace, PREFIX + item_id, value, expected_version=0, writer=self.writer
            )
        except VersionConflict as conflict:
            current = conflict.current
            if current is not None and not current.deleted:
                if isinstance(current.value, dict) and current.value.get("sha256") == digest:
                    return digest  # the same original again: nothing to do
                raise StoreError(
                    f"archived item {item_id!r} already holds different content"
                ) from None
            raise
        return digest

    def get(self, item_id: str) -> ArchivedItem:
        """The original, both checksums verified; ``StoreError`` if unknown or corrupt."""
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
        record = self.store.get(self.namespace, PREFIX + item_id)
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
        return ordered

    def __len__(self) -> int:
        return len(self.ids())

    def lazy(self, item_id: str) -> Any:
        """The archived record's value as a proxy, read (and verified) on first use."""
        return lazy_record(self.store, self.namespace, PREFIX + item_id)
