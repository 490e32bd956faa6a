"""One memory for many workers: a local cache per session, synced with a shared store.

:class:`DistributedMemoryManager` keeps, per session, a local copy of that session's
keyed records (JSON values). Reads and writes are local and never block on the
network; :meth:`~DistributedMemoryManager.sync_session_memory` (or the background
thread, every 30 s by default) exchanges changes with the store:

- **pull** the records other writers changed since the last sync: the journal
  after the last seen position when it is complete, otherwise the whole session;
  keys not changed locally take the newer version;
- **push** local changes as compare-and-set writes based on the version each
  change started from; a write that finds a newer version is a conflict, decided
  per key by the strategy (see :mod:`memlens.context.shared.sync`) and listed in
  the result, then retried on top of the version that won;
- if the store cannot be reached, the manager degrades to local-only (an event
  says so), keeps every local change, and catches up on the next sync that works;
- if the store's journal went *back* (a Redis server restarted empty), the
  manager says so and writes its whole local copy back;
- a session that fails its checksums is repaired with
  :func:`~memlens.context.shared.recovery.recover_corrupted_memory` (when
  ``auto_recover``) before syncing, and the result says so.

Every local update ends up either written to the store or listed as a conflict
that it lost: none is dropped without a trace. The benchmark
``benchmarks/bench_shared_memory.py`` checks this with 8 processes.

The background thread is a daemon named ``memlens-sync``; after ``os.fork()`` the
child reopens the store and restarts the thread if the parent had one running.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from memlens.context.shared.recovery import RecoveryResult, recover_corrupted_memory
from memlens.context.shared.sync import (
    Conflict,
    Strategy,
    SyncResult,
    check_strategy,
    decide,
    pick_strategy,
)
from memlens.core.errors import ConfigError, StoreError
from memlens.store.records import (
    CorruptRecordError,
    PutRequest,
    Record,
    RecordStore,
    StoreUnavailableError,
    VersionConflict,
)

DEFAULT_SYNC_INTERVAL = 30.0
_MAX_PUSH_ROUNDS = 50


@dataclass(frozen=True)
class MemoryEvent:
    """Something the manager wants an operator to know (also sent to ``on_event``).

    ``kind``: ``degraded`` (store unreachable, working locally), ``reconnected``,
    ``remote-reset`` (the store lost its journal; local state written back),
    ``recovered`` (damaged records repaired), ``sync-error``.
    """

    kind: str
    session_id: str
    detail: str
    at: float = field(default_factory=time.time)


@dataclass
class _Entry:
    value: Any
    version: int  # the stored version this value is based on (0: never stored)
    updated_at: float
    dirty: bool = False
    deleted: bool = False
    gen: int = 0  # bumped by every local change, so a sync can tell it raced one
    stamp: int = 0  # the session's change count when the value last changed (any side)


@dataclass
class _SessionState:
    entries: dict[str, _Entry] = field(default_factory=dict)
    seen_head: int = 0  # journal position pulled up to
    acked_head: int = 0  # highest journal position the store ever reported to us
    loaded: bool = False
    # Conflicts decided while loading (before a sync asked): reported by the next sync.
    conflicts: list[Conflict] = field(default_factory=list)
    stamp: int = 0  # bumped by every change of a local value, local or pulled

    def changed(self, entry: _Entry) -> None:
        self.stamp += 1
        entry.stamp = self.stamp


@dataclass
class Changes:
    """What changed in a session's local copy since a stamp (see
    :meth:`DistributedMemoryManager.changes`)."""

    stamp: int  # pass it back next time
    values: dict[str, Any]  # live keys whose value changed, and the value now
    deleted: set[str]  # keys deleted since


class DistributedMemoryManager:
    """Keyed memory per session, cached locally and synced with a shared record store.

    ``storage`` is a URL (``"redis://host:6379/0"``, ``"sqlite:///memory.db"``) or an
    open :class:`~memlens.store.records.RecordStore`. ``strategy`` decides conflicts
    (``"remote-wins"``, ``"local-wins"``, ``"timestamp"`` or a merge callable) and
    ``strategies`` overrides it per key (``{"prefs.*": "local-wins"}``).
    ``snapshot_every`` takes a snapshot after that many journal entries (0: never).
    """

    def __init__(
        self,
        storage: str | RecordStore = "sqlite:///.memlens/memory.db",
        *,
        writer_id: str | None = None,
        strategy: Strategy = "timestamp",
        strategies: Mapping[str, Strategy] | None = None,
        sync_interval: float = DEFAULT_SYNC_INTERVAL,
        snapshot_every: int = 500,
        keep_snapshots: int = 5,
        auto_recover: bool = True,
        on_event: Callable[[MemoryEvent], None] | None = None,
        max_events: int = 1000,
    ) -> None:
        check_strategy(strategy)
        for key, per_key in (strategies or {}).items():
            check_strategy(per_key, f"strategy for {key!r}")
        if not (sync_interval > 0 and sync_interval != float("inf")):
            raise ConfigError(f"invalid sync_interval {sync_interval!r}: expected seconds above 0")
        if snapshot_every < 0 or keep_snapshots < 1:
            raise ConfigError("snapshot_every must be >= 0 and keep_snapshots >= 1")
        self._url = storage if isinstance(storage, str) else None
        self._store: RecordStore | None = None if isinstance(storage, str) else storage
        self._store_pid = os.getpid()
        self.writer_id = writer_id or f"{socket.gethostname()}:{os.getpid()}"
        self.strategy: Strategy = strategy
        self.strategies = dict(strategies or {})
        self.sync_interval = float(sync_interval)
        self.snapshot_every = snapshot_every
        self.keep_snapshots = keep_snapshots
        self.auto_recover = auto_recover
        self.on_event = on_event
        self.events: collections.deque[MemoryEvent] = collections.deque(maxlen=max_events)
        self.degraded = False
        self._sessions: dict[str, _SessionState] = {}
        #: Per session, how :meth:`recover` rebuilds keys nothing else holds (a shared
        #: context memory registers its archive here).
        self.rebuilders: dict[str, Callable[[list[str]], Mapping[str, Any]]] = {}
        self._last_snapshot_head: dict[str, int] = {}
        # _lock guards the local copy and is never held during network calls;
        # _sync_lock lets one sync (or first load) at a time talk to the store.
        self._lock = threading.RLock()
        self._sync_lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        _register_fork_hook(self)

    # -- store ---------------------------------------------------------------------
    @property
    def store(self) -> RecordStore:
        """The record store (opened on first use; reopened in a forked child)."""
        if self._store is not None and self._store_pid != os.getpid() and self._url:
            self._store = None  # a connection inherited through fork is not ours to use
        if self._store is None:
            if self._url is None:
                raise StoreError("the record store was closed")
            from memlens.store import open_record_store

            self._store = open_record_store(self._url)
            self._store_pid = os.getpid()
        return self._store

    def close(self) -> None:
        """Stop background sync and close the store if this manager opened it."""
        self.stop_background_sync()
        with self._lock:
            if self._store is not None and self._url is not None:
                self._store.close()
                self._store = None

    def __enter__(self) -> DistributedMemoryManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- local reads and writes ----------------------------------------------------
    def _session(self, session_id: str) -> _SessionState:
        from memlens.store.records import check_name

        with self._lock:
            state = self._sessions.get(session_id)
            if state is None:
                check_name("session id", session_id)
                state = self._sessions[session_id] = _SessionState()
            return state

    def _ensure_loaded(self, session_id: str) -> _SessionState:
        state = self._session(session_id)
        if state.loaded:
            return state
        with self._sync_lock:
            if not state.loaded:
                try:
                    try:
                        self._pull(session_id, state, state.conflicts, self.strategy)
                    except CorruptRecordError:
                        # Damage is not an outage: repair first (or say so), then load.
                        if not self.auto_recover:
                            raise
                        self.recover(session_id)
                        self._pull(session_id, state, state.conflicts, self.strategy)
                except StoreError as exc:
                    # Reading works locally even when the store does not; say so once.
                    self._unavailable(session_id, exc)
        return state

    def get(self, session_id: str, key: str, default: Any = None) -> Any:
        """The value of ``key`` in the session (local copy; loads the session once)."""
        state = self._ensure_loaded(session_id)
        with self._lock:
            entry = state.entries.get(key)
            if entry is None or entry.deleted:
                return default
            return entry.value

    def set(self, session_id: str, key: str, value: Any) -> None:
        """Change ``key`` locally; the next sync writes it (JSON values only)."""
        from memlens.store.records import check_name, dumps

        check_name("key", key)
        dumps(value)  # refuse what the store could not hold, now rather than at sync
        state = self._ensure_loaded(session_id)
        with self._lock:
            entry = state.entries.get(key)
            now = time.time()
            if entry is None:
                entry = state.entries[key] = _Entry(value, 0, now, dirty=True, gen=1)
            else:
                entry.value, entry.updated_at, entry.dirty, entry.deleted = value, now, True, False
                entry.gen += 1
            state.changed(entry)

    def delete(self, session_id: str, key: str) -> None:
        """Delete ``key`` locally; the next sync writes a tombstone."""
        state = self._ensure_loaded(session_id)
        with self._lock:
            entry = state.entries.get(key)
            if entry is None or entry.deleted:
                return
            entry.value, entry.deleted, entry.dirty, entry.updated_at = (
                None,
                True,
                True,
                time.time(),
            )
            entry.gen += 1
            state.changed(entry)

    def items(self, session_id: str) -> dict[str, Any]:
        """Every live key of the session and its local value."""
        entries = self._ensure_loaded(session_id).entries
        with self._lock:
            return {k: e.value for k, e in sorted(entries.items()) if not e.deleted}

    def keys(self, session_id: str) -> list[str]:
        return list(self.items(session_id))

    def changes(self, session_id: str, since: int = 0) -> Changes:
        """The keys whose local value changed after ``since`` (a stamp an earlier call
        returned; 0: every key), by local edits or by a sync.

        A reader that mirrors the session (a shared context memory) takes only
        these instead of comparing every value on every sync.
        """
        state = self._ensure_loaded(session_id)
        with self._lock:
            values: dict[str, Any] = {}
            deleted: set[str] = set()
            for key, entry in state.entries.items():
                if entry.stamp > since:
                    if entry.deleted:
                        deleted.add(key)
                    else:
                        values[key] = entry.value
            return Changes(state.stamp, values, deleted)

    def pending(self, session_id: str) -> list[str]:
        """Keys changed locally and not yet written to the store."""
        with self._lock:
            return sorted(k for k, e in self._session(session_id).entries.items() if e.dirty)

    def sessions(self) -> list[str]:
        """Sessions this manager has touched."""
        with self._lock:
            return sorted(self._sessions)

    # -- sync ----------------------------------------------------------------------
    async def sync_session_memory(
        self, session_id: str, *, strategy: Strategy | None = None
    ) -> SyncResult:
        """Merge the local copy of ``session_id`` with the store (see the module doc)."""
        return await asyncio.to_thread(self.sync, session_id, strategy=strategy)

    def sync(self, session_id: str, *, strategy: Strategy | None = None) -> SyncResult:
        """The blocking form of :meth:`sync_session_memory`."""
        if strategy is not None:
            check_strategy(strategy)
        with self._sync_lock:
            state = self._session(session_id)
            result = SyncResult(False, 0, state.seen_head, 0)
            try:
                self._sync(session_id, state, strategy or self.strategy, result)
            except CorruptRecordError as exc:
                if not self.auto_recover:
                    result.error = str(exc)
                    self._event("sync-error", session_id, str(exc))
                    return result
                recovery = self.recover(session_id)
                if not recovery.valid:
                    result.error = f"{exc}; recovery: {recovery.error or recovery.method}"
                    return result
                result.recovered = True
                try:
                    self._sync(session_id, state, strategy or self.strategy, result)
                except StoreError as again:
                    result.error = str(again)
                    return result
            except StoreUnavailableError as exc:
                self._unavailable(session_id, exc)
                result.error = str(exc)
                return result
            except StoreError as exc:
                result.error = str(exc)
                self._event("sync-error", session_id, str(exc))
                return result
            if self.degraded:
                self.degraded = False
                self._event("reconnected", session_id, f"synced with {self.store.location}")
            result.success = True
            result.conflicts_resolved = len(result.conflicts)
            return result

    def sync_all(self) -> dict[str, SyncResult]:
        """Sync every session this manager has touched."""
        return {sid: self.sync(sid) for sid in self.sessions()}

    def _sync(
        self, session_id: str, state: _SessionState, strategy: Strategy, result: SyncResult
    ) -> None:
        store = self.store
        conflicts: list[Conflict] = []
        with self._lock:
            conflicts.extend(state.conflicts)
            state.conflicts.clear()
        result.pulled += self._pull(session_id, state, conflicts, strategy)
        wrote = False
        for _round in range(_MAX_PUSH_ROUNDS):
            with self._lock:
                dirty = [(k, e, e.gen) for k, e in sorted(state.entries.items()) if e.dirty]
                requests = [
                    PutRequest(k, e.value, e.version, delete=e.deleted, updated_at=e.updated_at)
                    for k, e, _gen in dirty
                ]
            if not dirty:
                break
            outcomes = store.put_many(session_id, requests, writer=self.writer_id)
            wrote = True
            raced = False
            for (key, entry, gen), outcome in zip(dirty, outcomes):
                if isinstance(outcome, Record):
                    with self._lock:
                        entry.version = outcome.version
                        # A change made while we were writing stays pending, on top of ours.
                        entry.dirty = entry.gen != gen
                    result.pushed += 1
                    continue
                raced = True
                remote = outcome.current if isinstance(outcome, VersionConflict) else None
                if remote is None:
                    remote = store.get(session_id, key)
                with self._lock:
                    if remote is None:  # the key vanished meanwhile: write it as new
                        entry.version = 0
                        continue
                    self._resolve(key, entry, remote, strategy, conflicts, state)
            if raced:
                result.retries += 1
        else:
            raise StoreError(f"could not write {session_id}: the keys kept changing")
        # Nothing written: the journal position is the one the pull just read.
        head = store.head(session_id) if wrote else state.seen_head
        state.acked_head = max(state.acked_head, head)
        result.version = head
        result.conflicts.extend(conflicts)
        result.synced_items = result.pushed + result.pulled
        self._maybe_snapshot(session_id, head)

    def _pull(
        self,
        session_id: str,
        state: _SessionState,
        conflicts: list[Conflict],
        strategy: Strategy,
    ) -> int:
        """Take remote changes into the local copy; return how many keys changed."""
        store = self.store
        head = store.head(session_id)
        if head < max(state.seen_head, state.acked_head):
            # The store forgot writes it had acknowledged (e.g. Redis restarted without
            # persistence): write everything back rather than trust the empty side.
            self._event(
                "remote-reset",
                session_id,
                f"journal went back from {max(state.seen_head, state.acked_head)} to {head}; "
                "writing local state back",
            )
            with self._lock:
                for entry in state.entries.values():
                    entry.version, entry.dirty = 0, True
            state.seen_head = state.acked_head = 0
        if state.loaded and head == state.seen_head:
            changed = []  # the journal has not moved since the last pull: nothing to read
        else:
            changed = self._changed_since(session_id, state.seen_head if state.loaded else 0)
        count = 0
        with self._lock:
            for remote in changed:
                local = state.entries.get(remote.key)
                if local is None:
                    local = state.entries[remote.key] = _Entry(
                        remote.value, remote.version, remote.updated_at, deleted=remote.deleted
                    )
                    state.changed(local)
                    count += 1
                elif remote.version > local.version:
                    if local.dirty:
                        self._resolve(remote.key, local, remote, strategy, conflicts, state)
                    else:
                        local.value, local.version = remote.value, remote.version
                        local.updated_at, local.deleted = remote.updated_at, remote.deleted
                        state.changed(local)
                    count += 1
            state.seen_head = max(head, state.seen_head)
            state.loaded = True
        return count

    def _changed_since(self, session_id: str, seen: int) -> list[Record]:
        store = self.store
        if seen > 0:
            oldest = min((s.journal_seq for s in store.snapshots(session_id)), default=0)
            if seen >= oldest:
                journal = store.journal(session_id, after=seen)
                if not journal.damaged:
                    latest: dict[str, Record] = {}
                    for entry in journal.entries:
                        latest[entry.record.key] = entry.record
                    return list(latest.values())
        # First load, a pruned journal, or a damaged one: read every record (verified).
        return store.list(session_id, include_deleted=True)

    def _resolve(
        self,
        key: str,
        entry: _Entry,
        remote: Record,
        default: Strategy,
        conflicts: list[Conflict],
        state: _SessionState,
    ) -> None:
        if remote.deleted == entry.deleted and (entry.deleted or remote.value == entry.value):
            # The store already holds this very value (our own write whose answer was
            # lost, or the same change made elsewhere): nothing to decide or report.
            entry.version, entry.dirty = remote.version, False
            return
        strategy = pick_strategy(key, default, self.strategies)
        conflict, value, keep_local = decide(
            key, strategy, entry.value, entry.deleted, entry.updated_at, entry.version, remote
        )
        conflicts.append(conflict)
        if keep_local:
            entry.value, entry.version, entry.dirty = value, remote.version, True
        else:
            entry.value, entry.version, entry.dirty = remote.value, remote.version, False
            entry.updated_at, entry.deleted = remote.updated_at, remote.deleted
        state.changed(entry)

    def _maybe_snapshot(self, session_id: str, head: int) -> None:
        if not self.snapshot_every:
            return
        last = self._last_snapshot_head.get(session_id)
        if last is None:
            last = max((s.journal_seq for s in self.store.snapshots(session_id)), default=0)
        if head - last >= self.snapshot_every:
            try:
                self.store.snapshot(session_id, keep=self.keep_snapshots)
            except CorruptRecordError as exc:
                self._event("sync-error", session_id, f"no snapshot taken: {exc}")
                return
            last = head
        self._last_snapshot_head[session_id] = last

    def snapshot(self, session_id: str) -> None:
        """Take a snapshot of the stored session now (a new last known good state)."""
        with self._sync_lock:
            info = self.store.snapshot(session_id, keep=self.keep_snapshots)
            self._last_snapshot_head[session_id] = info.journal_seq

    def recover(
        self, session_id: str, rebuild: Callable[[list[str]], Mapping[str, Any]] | None = None
    ) -> RecoveryResult:
        """Repair the stored session (see :func:`recover_corrupted_memory`); ``rebuild``
        defaults to the one registered for the session in :attr:`rebuilders`."""
        rebuild = rebuild or self.rebuilders.get(session_id)
        with self._sync_lock:
            result = recover_corrupted_memory(self.store, session_id, rebuild=rebuild)
            if result.detected:
                self._event(
                    "recovered" if result.valid else "sync-error",
                    session_id,
                    f"{len(result.detected)} problem(s); method {result.method}; "
                    f"restored {len(result.restored)}, lost {len(result.lost)}",
                )
            return result

    # -- events --------------------------------------------------------------------
    def _event(self, kind: str, session_id: str, detail: str) -> None:
        event = MemoryEvent(kind, session_id, detail)
        self.events.append(event)
        if self.on_event is not None:
            # A subscriber must never break syncing.
            with contextlib.suppress(Exception):
                self.on_event(event)

    def _unavailable(self, session_id: str, exc: BaseException) -> None:
        if not self.degraded:
            self.degraded = True
            self._event("degraded", session_id, f"working locally: {exc}")

    # -- background sync -----------------------------------------------------------
    def start_background_sync(self, interval: float | None = None) -> None:
        """Sync every touched session every ``interval`` seconds in a daemon thread."""
        if interval is not None:
            if not (interval > 0 and interval != float("inf")):
                raise ConfigError(f"invalid interval {interval!r}: expected seconds above 0")
            self.sync_interval = float(interval)
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="memlens-sync", daemon=True)
            self._thread.start()

    def stop_background_sync(self, timeout: float = 10.0) -> None:
        """Stop the background thread (after a last sync of every session)."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        if thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    @property
    def background_sync_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self.sync_interval):
            self.sync_all()
        self.sync_all()  # a last round so nothing written before stop() stays local

    def _after_fork_in_child(self) -> None:
        was_running = self._thread is not None
        self._lock = threading.RLock()
        self._sync_lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = None
        if self._url is not None:
            self._store = None  # reopened on first use, in this process
        if was_running:
            self.start_background_sync()


_MANAGERS: weakref.WeakSet[DistributedMemoryManager] = weakref.WeakSet()
_HOOK_INSTALLED = False


def _register_fork_hook(manager: DistributedMemoryManager) -> None:
    global _HOOK_INSTALLED
    _MANAGERS.add(manager)
    if not _HOOK_INSTALLED and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork)
        _HOOK_INSTALLED = True


def _after_fork() -> None:
    for manager in list(_MANAGERS):
        manager._after_fork_in_child()
