"""A ``ContextMemory`` shared by many workers through a :class:`DistributedMemoryManager`.

:class:`SharedContextMemory` is a :class:`~memlens.context.memory.ContextMemory`
(the same ``add_message``, ``fit``, ``expand``, ``profile`` …) whose items live in one
session of a distributed memory manager, so every worker that opens the same session
on the same store (Redis or SQLite) works on one window::

    from memlens.context.shared import DistributedMemoryManager, SharedContextMemory

    manager = DistributedMemoryManager("redis://cache:6379/0", writer_id="worker-7")
    memory = SharedContextMemory(manager, "user-42", budget="200k")
    memory.add_message("user", "Fix the failing test")
    result = memory.sync()        # push local changes, take the others', same SyncResult
    memory.fit()                  # originals go to the shared archive (RecordArchive)

How it maps onto the manager's records (one session, namespace ``SESSION``):

- ``entry/<id>``: one live item — its text, tokens, layer, priority, pin, group, turn,
  level, order, notes and payload (everything but the last access time, which stays
  a local heuristic so reads do not make writes);
- ``replaced/<id>``: an item that a fit summarised or evicted, and the summary that
  replaced it (``null`` if evicted) — final: a replaced item never comes back live;
- ``cache/<key>``: which entry a cache key points at, and when it expires.

Originals go to a :class:`~memlens.context.shared.archive.RecordArchive` in the
namespace ``SESSION/archive`` of the same store (the default archive here), so
``expand`` works on every worker. Generated item ids carry the writer id, so two
workers never pick the same id.

:meth:`SharedContextMemory.sync` stages the local changes since the last sync
(each entry's fields compared with those last synced, in C, as a tuple; only a
changed entry is encoded), runs the manager's sync (compare-and-set, conflicts
decided per key and listed in the result), then makes the window equal to the
merged state: new and changed items installed, replaced ones retired, a cache key
taken by another worker's entry archives the local one. It takes from the manager
only the keys whose value changed since the last sync (:meth:`~memlens.context.
shared.manager.DistributedMemoryManager.changes`), so a sync costs what changed,
not the size of the window.
Sync at turn boundaries (before a model call, after a fit); a ``ContextMemory`` is
not thread-safe, so this class has no background thread of its own.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from memlens.context.layers import Layer
from memlens.context.memory.archive import Archive
from memlens.context.memory.entries import MemoryEntry, Priority
from memlens.context.memory.memory import CacheSlot, ContextMemory
from memlens.context.shared.archive import RecordArchive
from memlens.context.shared.manager import DistributedMemoryManager
from memlens.context.shared.recovery import RecoveryResult
from memlens.context.shared.sync import Strategy, SyncResult
from memlens.core.errors import StoreError
from memlens.store.records import RecordStore, StoreUnavailableError, dumps

ENTRY = "entry/"
REPLACED = "replaced/"
CACHE = "cache/"
ARCHIVE_SUFFIX = "/archive"


def archive_namespace(session_id: str) -> str:
    """Where a shared context memory keeps its originals."""
    return session_id + ARCHIVE_SUFFIX


def encode_entry(entry: MemoryEntry) -> dict[str, Any]:
    """The record value of one live entry (JSON; no last access time, see the module doc)."""
    return {
        "layer": entry.layer.value,
        "content": entry.content,
        "tokens": entry.tokens,
        "original_tokens": entry.original_tokens,
        "sublayer": entry.sublayer,
        "role": entry.role,
        "kind": entry.kind,
        "priority": entry.priority.value,
        "pinned": entry.pinned,
        "created": entry.created.isoformat() if entry.created else None,
        "group": entry.group,
        "turn": entry.turn,
        "level": entry.level,
        "seq": entry.seq,
        "overhead": entry.overhead,
        "archived": entry.archived,
        "notes": list(entry.notes),
        # JSON-plain (tuples become lists), so a value compares equal to its stored copy.
        "payload": json.loads(dumps(entry.payload)),
    }


def fingerprint(entry: MemoryEntry) -> tuple[Any, ...]:
    """The fields :func:`encode_entry` writes, as one tuple (keep the two in step):
    equal fingerprints mean equal record values, and comparing two is a C loop, not
    an encode. The payload is compared by value, so an edit made in place shows."""
    return (
        entry.layer,
        entry.content,
        entry.tokens,
        entry.original_tokens,
        entry.sublayer,
        entry.role,
        entry.kind,
        entry.priority,
        entry.pinned,
        entry.created,
        entry.group,
        entry.turn,
        entry.level,
        entry.seq,
        entry.overhead,
        entry.archived,
        tuple(entry.notes),
        entry.payload,
    )


def _kept(print_: tuple[Any, ...]) -> tuple[Any, ...]:
    # A copy of the payload, so a later edit of the live one in place is seen as a change.
    return (*print_[:-1], copy.deepcopy(print_[-1]))


def decode_entry(entry_id: str, data: Mapping[str, Any]) -> MemoryEntry:
    """The entry a record value describes; ``StoreError`` if it is not one."""
    try:
        created = data.get("created")
        return MemoryEntry(
            id=entry_id,
            layer=Layer.parse(data["layer"]),
            content=str(data["content"]),
            tokens=int(data["tokens"]),
            original_tokens=int(data["original_tokens"]),
            sublayer=str(data.get("sublayer", "")),
            role=str(data.get("role", "")),
            kind=str(data.get("kind", "text")),
            priority=Priority.parse(data.get("priority", "normal")),
            pinned=bool(data.get("pinned", False)),
            created=datetime.fromisoformat(created) if created else None,
            last_accessed=datetime.fromisoformat(created) if created else None,
            group=str(data.get("group", "")),
            turn=int(data.get("turn", 0)),
            level=int(data.get("level", 1)),
            seq=int(data.get("seq", 0)),
            overhead=int(data.get("overhead", 0)),
            archived=bool(data.get("archived", False)),
            notes=[str(n) for n in data.get("notes", [])],
            payload=dict(data.get("payload") or {}),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreError(f"memory entry {entry_id!r} is not a valid entry record: {exc}") from None


def _id_prefix(writer_id: str) -> str:
    # Ids are shown in summaries and logs: keep the writer recognisable but short.
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", writer_id).strip("-")[:40] + "."


class SharedContextMemory(ContextMemory):
    """A context memory whose items are one session of a :class:`DistributedMemoryManager`.

    ``manager`` is a manager or a store URL (a manager is then opened, and closed by
    :meth:`close`). Other keywords are :class:`ContextMemory`'s; ``archive`` defaults
    to a :class:`RecordArchive` in the same store. The constructor syncs once, so the
    window starts with what the other workers have (or, if the store cannot be
    reached, empty and degraded: see ``manager.events``).
    """

    def __init__(
        self,
        manager: DistributedMemoryManager | str,
        session_id: str,
        budget: int | str | None = None,
        **kw: Any,
    ) -> None:
        self._owns_manager = isinstance(manager, str)
        self.manager = DistributedMemoryManager(manager) if isinstance(manager, str) else manager
        self.session_id = session_id
        if kw.get("archive") is None:
            kw["archive"] = RecordArchive(
                lambda: self.manager.store,
                archive_namespace(session_id),
                writer=self.manager.writer_id,
            )
        kw.setdefault("id_prefix", _id_prefix(self.manager.writer_id))
        super().__init__(budget, **kw)
        self._synced: dict[str, tuple[Any, ...]] = {}  # entry id -> fingerprint last synced
        self._staged: dict[str, Any] = {}  # entry id -> the value this sync handed over
        self._synced_cache: dict[str, dict[str, Any]] = {}
        # The manager's local copy of the session, mirrored from its change feed.
        self._stamp = 0
        self._stored: dict[str, Any] = {}  # entry id -> record value
        self._stored_replaced: dict[str, Any] = {}  # entry id -> the summary that replaced it
        self._stored_cache: dict[str, dict[str, Any]] = {}  # cache key -> its slot
        self._sync_lock = threading.RLock()
        self.last_sync: SyncResult | None = None
        self.manager.rebuilders.setdefault(session_id, self.rebuild_from_archive)
        self.sync()

    # -- sync --------------------------------------------------------------------
    def sync(self, *, strategy: Strategy | None = None) -> SyncResult:
        """Exchange changes with the store (see the module doc); never raises for an outage."""
        with self._sync_lock:
            self._flush_archive()
            self._stage()
            result = self.manager.sync(self.session_id, strategy=strategy)
            if self._apply() and result.success:
                # Taking the merged state retired local items (a lost cache key, a
                # duplicate summary): say so to the others now, not at the next sync.
                self._stage()
                again = self.manager.sync(self.session_id, strategy=strategy)
                self._apply()
                result = _combine(result, again)
            self.last_sync = result
            return result

    async def sync_session_memory(self, *, strategy: Strategy | None = None) -> SyncResult:
        """:meth:`sync` off the event loop."""
        import asyncio

        return await asyncio.to_thread(self.sync, strategy=strategy)

    def _flush_archive(self) -> None:
        archive = self.archive
        if isinstance(archive, RecordArchive) and archive.spilled:
            # Still unreachable: kept locally, and the manager's sync says so.
            with contextlib.suppress(StoreUnavailableError):
                archive.flush()

    def _stage(self) -> None:
        """Hand every local change since the last sync to the manager."""
        manager, sid = self.manager, self.session_id
        for entry_id, entry in self.entries.items():
            print_ = fingerprint(entry)
            if self._synced.get(entry_id) != print_:
                value = encode_entry(entry)
                manager.set(sid, ENTRY + entry_id, value)
                self._staged[entry_id] = value
                self._synced[entry_id] = _kept(print_)
        for entry_id, by in self.replaced_by.items():
            if entry_id not in self._stored_replaced:
                manager.set(sid, REPLACED + entry_id, by)
                if manager.get(sid, ENTRY + entry_id) is not None:
                    manager.delete(sid, ENTRY + entry_id)
        slots = self.cache_slots()
        for key, slot in slots.items():
            value = {"entry": slot.entry_id, "expires": slot.expires}
            if self._synced_cache.get(key) != value:
                manager.set(sid, CACHE + key, value)
        for key in self._synced_cache.keys() - slots.keys():
            manager.delete(sid, CACHE + key)

    def _take_changes(self) -> tuple[set[str], dict[str, Any]]:
        """Mirror what changed in the manager's copy; return the entry ids to look at
        again (changed, or pointed at by a changed cache key) and the new replacements."""
        changes = self.manager.changes(self.session_id, self._stamp)
        self._stamp = changes.stamp
        visit: set[str] = set()
        new_replaced: dict[str, Any] = {}
        for key, value in changes.values.items():
            if key.startswith(ENTRY):
                self._stored[key[len(ENTRY) :]] = value
                visit.add(key[len(ENTRY) :])
            elif key.startswith(REPLACED):
                self._stored_replaced[key[len(REPLACED) :]] = value
                new_replaced[key[len(REPLACED) :]] = value
            elif key.startswith(CACHE):
                if isinstance(value, dict):
                    self._stored_cache[key[len(CACHE) :]] = value
                    visit.add(str(value.get("entry")))
                else:
                    self._stored_cache.pop(key[len(CACHE) :], None)
        for key in changes.deleted:
            if key.startswith(ENTRY):
                self._stored.pop(key[len(ENTRY) :], None)
            elif key.startswith(REPLACED):
                self._stored_replaced.pop(key[len(REPLACED) :], None)
            elif key.startswith(CACHE):
                self._stored_cache.pop(key[len(CACHE) :], None)
        return visit, new_replaced

    def _apply(self) -> bool:
        """Make the window what the manager holds now (the merged state).

        Returns True if that retired local items the store does not know about yet.
        """
        manager, sid = self.manager, self.session_id
        visit, new_replaced = self._take_changes()
        entries, replaced, cache = self._stored, self._stored_replaced, self._stored_cache
        before_slots = self.cache_slots()
        retired: list[str] = []
        # Replaced is final: an entry edited on one worker while another replaced it
        # leaves the window (the worker that replaced it archived the original).
        for entry_id, by in new_replaced.items():
            if entry_id in self.entries or entry_id not in self.replaced_by:
                self.retire(entry_id, by=by if isinstance(by, str) else None)
        for entry_id in [i for i in (visit | new_replaced.keys()) if i in replaced]:
            if entry_id in entries:
                manager.delete(sid, ENTRY + entry_id)
                del entries[entry_id]
        slot_of = {v.get("entry"): k for k, v in cache.items()}
        for entry_id in sorted(visit & entries.keys(), key=lambda i: _seq_of(entries[i])):
            value = entries[entry_id]
            local = self.entries.get(entry_id)
            cache_key = slot_of.get(entry_id)
            slot = None
            if cache_key is not None:
                slot = CacheSlot(cache_key, entry_id, cache[cache_key].get("expires"))
            if local is not None and (
                value is self._staged.get(entry_id) or encode_entry(local) == value
            ):
                if slot is not None and before_slots.get(slot.key) != slot:
                    self.install(local, cache=slot)
                continue
            entry = decode_entry(entry_id, value)
            if local is not None and local.last_accessed:
                entry.last_accessed = local.last_accessed
            self.install(entry, cache=slot)
            self._synced[entry_id] = _kept(fingerprint(entry))
        self._staged.clear()
        for key, old in before_slots.items():
            winner = cache.get(key, {}).get("entry")
            if old.entry_id != winner and old.entry_id in self.entries:
                # Another worker put this cache key at the same time and won: keep our
                # value in the archive, out of the window.
                self.retire(old.entry_id, archive=True, reason="cache key taken by another")
                retired.append(old.entry_id)
        pointed = {v.get("entry") for v in cache.values()}
        unpointed = [
            entry_id
            for entry_id, entry in self.entries.items()
            if entry.layer is Layer.CACHE and entry_id not in pointed
        ]
        for entry_id in unpointed:
            if entry_id not in retired:
                # A cache value whose key another worker's value took: archived, not shown.
                self.retire(entry_id, archive=True, reason="cache key taken by another")
                retired.append(entry_id)
        gone = [i for i in self.entries if (i not in entries or i in replaced) and i not in retired]
        for entry_id in gone:
            self.retire(entry_id, archive=True, reason="removed by another worker")
            retired.append(entry_id)
        retired += self._retire_duplicate_summaries(replaced)
        for entry_id in [i for i in self._synced if i not in self.entries]:
            del self._synced[entry_id]
        self._synced_cache = {
            k: {"entry": s.entry_id, "expires": s.expires} for k, s in self.cache_slots().items()
        }
        return bool(retired)

    def _retire_duplicate_summaries(self, replaced: Mapping[str, Any]) -> list[str]:
        """Two workers that fit at once may summarise the same items: keep one summary."""
        out: list[str] = []
        for entry_id in [i for i, e in self.entries.items() if e.kind == "summary"]:
            covers = self.summary_of.get(entry_id) or []
            winners = {replaced.get(c) for c in covers}
            if covers and entry_id not in winners and all(w in self.entries for w in winners):
                self.retire(entry_id, archive=True, reason="the same items summarised elsewhere")
                out.append(entry_id)
        return out

    # -- recovery ----------------------------------------------------------------
    def recover(self) -> RecoveryResult:
        """Repair the stored session; entries nothing else holds are rebuilt from the archive
        (a sync that meets damage does the same, through the manager)."""
        with self._sync_lock:
            return self.manager.recover(self.session_id, rebuild=self.rebuild_from_archive)

    def rebuild_from_archive(self, keys: list[str]) -> dict[str, Any]:
        """Record values for lost ``entry/<id>`` keys, from their archived originals."""
        return rebuild_from_archive(self.archive, keys)

    def close(self) -> None:
        """A last sync; closes the manager if this memory opened it."""
        self.sync()
        if self._owns_manager:
            self.manager.close()

    def __enter__(self) -> SharedContextMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rebuild_from_archive(archive: Archive, keys: list[str]) -> dict[str, Any]:
    """Entry records for lost ``entry/<id>`` keys whose originals ``archive`` holds.

    The rebuilt entry is the original, verbatim (a summary shown in its place is
    gone with the record); keys the archive cannot answer are left out (reported lost).
    """
    out: dict[str, Any] = {}
    for key in keys:
        entry_id = key[len(ENTRY) :] if key.startswith(ENTRY) else None
        if entry_id is None or entry_id not in archive:
            continue
        item = archive.get(entry_id)
        meta = item.meta
        tokens = int(meta.get("original_tokens") or meta.get("tokens") or 0)
        payload = dict(meta.get("payload") or {})
        raw, field_name = payload.get("raw"), payload.pop("raw_text", None)
        if isinstance(raw, dict) and isinstance(field_name, str):
            # The archive left the raw message's copy of the text out: put it back.
            payload["raw"] = {**raw, field_name: item.content}
        out[key] = {
            "layer": meta.get("layer", "conversation"),
            "content": item.content,
            "tokens": tokens,
            "original_tokens": tokens,
            "sublayer": meta.get("sublayer", ""),
            "role": meta.get("role", ""),
            "kind": meta.get("kind", "text"),
            "priority": meta.get("priority", "normal"),
            "pinned": bool(meta.get("pinned", False)),
            "created": None,
            "group": meta.get("group", entry_id),
            "turn": int(meta.get("turn", 0)),
            "level": 1,
            "seq": 0,
            "overhead": 0,
            "archived": True,
            "notes": ["rebuilt from the archive"],
            "payload": payload,
        }
    return out


def archive_rebuilder(
    store: RecordStore, session_id: str
) -> Callable[[list[str]], dict[str, Any]] | None:
    """The rebuild callback for a stored shared context memory, if it has an archive."""
    if archive_namespace(session_id) not in store.namespaces():
        return None
    archive = RecordArchive(store, archive_namespace(session_id))
    return lambda keys: rebuild_from_archive(archive, keys)


def _combine(first: SyncResult, second: SyncResult) -> SyncResult:
    second.conflicts[:0] = first.conflicts
    second.conflicts_resolved = len(second.conflicts)
    second.pushed += first.pushed
    second.pulled += first.pulled
    second.retries += first.retries
    second.synced_items += first.synced_items
    second.recovered = second.recovered or first.recovered
    return second


def _seq_of(value: Any) -> int:
    try:
        return int(value.get("seq", 0))
    except (AttributeError, TypeError, ValueError):
        return 0


def open_shared_memory(
    storage: str,
    session_id: str,
    *,
    writer_id: str | None = None,
    factory: Callable[..., SharedContextMemory] = SharedContextMemory,
    **kw: Any,
) -> SharedContextMemory:
    """Open ``session_id`` on ``storage`` (a URL) as a shared context memory."""
    manager = DistributedMemoryManager(storage, writer_id=writer_id)
    memory = factory(manager, session_id, **kw)
    memory._owns_manager = True
    return memory


@dataclass
class StoredItem:
    """One live item of a stored shared memory, with who wrote it last."""

    entry: MemoryEntry
    version: int
    writer: str
    cache_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = self.entry.to_dict()
        data.update(version=self.version, writer=self.writer, cache_key=self.cache_key)
        return data


@dataclass
class SharedMemoryView:
    """What a shared context memory holds in the store (read without a manager)."""

    session_id: str
    location: str
    items: list[StoredItem] = field(default_factory=list)
    replaced: dict[str, str | None] = field(default_factory=dict)
    archived: list[str] = field(default_factory=list)
    head: int = 0

    @property
    def tokens(self) -> int:
        return sum(i.entry.tokens for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "session": self.session_id,
            "store": self.location,
            "version": self.head,
            "tokens": self.tokens,
            "items": [i.to_dict() for i in self.items],
            "replaced": self.replaced,
            "archived": self.archived,
        }


def read_shared_memory(store: RecordStore, session_id: str) -> SharedMemoryView:
    """The stored window of ``session_id`` (verified reads; ``StoreError`` if damaged)."""
    view = SharedMemoryView(session_id, store.location, head=store.head(session_id))
    records = store.list(session_id)
    slots = {
        r.value.get("entry"): r.key[len(CACHE) :]
        for r in records
        if r.key.startswith(CACHE) and isinstance(r.value, dict)
    }
    for record in records:
        if record.key.startswith(REPLACED):
            by = record.value
            view.replaced[record.key[len(REPLACED) :]] = by if isinstance(by, str) else None
    for record in records:
        entry_id = record.key[len(ENTRY) :]
        if record.key.startswith(ENTRY) and entry_id not in view.replaced:
            entry = decode_entry(entry_id, record.value)
            view.items.append(StoredItem(entry, record.version, record.writer, slots.get(entry_id)))
    view.items.sort(key=lambda i: (i.entry.seq, i.entry.kind != "summary", i.entry.id))
    view.archived = RecordArchive(store, archive_namespace(session_id)).ids()
    return view
