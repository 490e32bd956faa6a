"""The record store in Redis: compare-and-set writes in Lua, journal and snapshots in lists.

Keys, for namespace ``NS`` under prefix ``P``:

- ``P:rec:NS`` hash key → record (JSON, with its checksum); ``P:ver:NS`` hash key →
  version, which the Lua script compares against;
- ``P:jseq:NS`` counter and ``P:jrnl:NS`` list of ``"SEQ:record"`` entries;
- ``P:snapid:NS`` counter and ``P:snap:NS`` list of snapshots, each
  ``"ID:JOURNAL_SEQ:{at,count,sum}"``, a newline, then the body (listing reads
  headers only);
- ``P:dead:NS`` set of tombstoned keys (so listing keys reads no values);
- ``P:namespaces`` set of namespaces.

A write runs one Lua script (atomic on the server): compare the version, set the
record and its version, take the next sequence number and append the journal entry.
A batch is one pipeline of scripts: one round trip, each write checked on its own.
Writes without an expected version read the version first and retry on a race, so
they are compare-and-set too and never silently overwrite a concurrent write.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from memlens.core.errors import StoreError
from memlens.store import _redis
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

_PUT = """
local cur = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if cur ~= tonumber(ARGV[2]) then
  return {0, cur, redis.call('HGET', KEYS[1], ARGV[1]) or false}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
if ARGV[6] == '1' then redis.call('SADD', KEYS[6], ARGV[1]) else redis.call('SREM', KEYS[6], ARGV[1]) end
local seq = redis.call('INCR', KEYS[4])
redis.call('RPUSH', KEYS[3], seq .. ':' .. ARGV[3])
redis.call('SADD', KEYS[5], ARGV[5])
return {1, seq}
"""

_SNAPSHOT = """
local id = redis.call('INCR', KEYS[2])
redis.call('RPUSH', KEYS[1], id .. ':' .. ARGV[1] .. ':' .. ARGV[2])
local keep = tonumber(ARGV[3])
local n = redis.call('LLEN', KEYS[1])
if n > keep then redis.call('LTRIM', KEYS[1], n - keep, -1) end
redis.call('SADD', KEYS[4], ARGV[4])
local oldest = tonumber(string.match(redis.call('LINDEX', KEYS[1], 0) or '', '^%d+:(%d+):'))
if oldest then
  while true do
    local first = redis.call('LINDEX', KEYS[3], 0)
    if not first then break end
    local seq = tonumber(string.match(first, '^(%d+):'))
    -- An unreadable entry at the front is older than what follows: retire it too.
    if seq and seq > oldest then break end
    redis.call('LPOP', KEYS[3])
  end
end
return id
"""

# The journal after a sequence number: entries are consecutive (INCR), so the
# position of seq N is N minus the first entry's seq. Atomic, so a concurrent prune
# cannot shift the positions between reading the first entry and the range.
_JOURNAL_TAIL = """
local first = redis.call('LINDEX', KEYS[1], 0)
if not first then return {} end
local s0 = tonumber(string.match(first, '^(%d+):'))
local after = tonumber(ARGV[1])
local start = 0
if s0 and after >= s0 then start = after - s0 + 1 end
return redis.call('LRANGE', KEYS[1], start, -1)
"""

# Snapshot headers only ("ID:SEQ:{at,count,sum}"), without their bodies.
_SNAPSHOT_HEADS = """
local out = {}
for i, entry in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  out[i] = string.match(entry, '^([^\\n]*)')
end
return out
"""

# How often a write without an expected version re-reads and retries on a race.
_MAX_RETRIES = 1000


class RedisRecordStore(_redis.RedisStoreBase, RecordStoreBase):
    """A :class:`~memlens.store.records.RecordStore` on a Redis server (``redis://…``)."""

    def __init__(self, url: str, *, readonly: bool = False, timeout: float = 5.0) -> None:
        super().__init__(url, readonly=readonly, timeout=timeout)
        self._put_script = self._client.register_script(_PUT)
        self._snap_script = self._client.register_script(_SNAPSHOT)
        self._tail_script = self._client.register_script(_JOURNAL_TAIL)
        self._heads_script = self._client.register_script(_SNAPSHOT_HEADS)
        #: Retries taken by writes without an expected version (for benchmarks).
        self.retries = 0

    def _keys(self, namespace: str) -> dict[str, str]:
        p = self.prefix
        return {
            name: f"{p}:{name}:{namespace}"
            for name in ("rec", "ver", "jrnl", "jseq", "snap", "snapid", "dead")
        } | {"namespaces": f"{p}:namespaces"}

    # -- writing -------------------------------------------------------------------
    def put_many(
        self, namespace: str, requests: Sequence[PutRequest], *, writer: str = ""
    ) -> builtins.list[Record | VersionConflict]:
        self._writable()
        check_name("namespace", namespace)
        for request in requests:
            check_name("key", request.key)
        keys = self._keys(namespace)
        results: builtins.list[Record | VersionConflict | None] = [None] * len(requests)
        pending = list(range(len(requests)))
        for _attempt in range(_MAX_RETRIES):
            blind = [i for i in pending if requests[i].expected_version is None]
            versions: dict[int, int] = {}
            if blind:
                names = [requests[i].key for i in blind]
                raw = self._call(lambda names=names: self._client.hmget(keys["ver"], names))
                versions = {i: int(v or 0) for i, v in zip(blind, raw)}
            attempts: builtins.list[tuple[int, Record]] = []
            pipe = self._client.pipeline(transaction=False)
            for i in pending:
                req = requests[i]
                base = versions[i] if i in versions else int(req.expected_version or 0)
                record, body = encode_write(namespace, req, base + 1, writer)
                self._put_script(
                    keys=[
                        keys["rec"],
                        keys["ver"],
                        keys["jrnl"],
                        keys["jseq"],
                        keys["namespaces"],
                        keys["dead"],
                    ],
                    args=[req.key, base, body, record.version, namespace, int(req.delete)],
                    client=pipe,
                )
                attempts.append((i, record))
            replies = self._call(pipe.execute)
            retry = []
            for (i, record), reply in zip(attempts, replies):
                if int(reply[0]) == 1:
                    results[i] = record
                    continue
                if requests[i].expected_version is None:
                    retry.append(i)  # lost a race: re-read the version and try again
                    continue
                current = None
                if reply[2]:
                    found = decode_record(_redis.text(reply[2]), namespace, "record", record.key)
                    current = found if isinstance(found, Record) else None
                results[i] = VersionConflict(
                    namespace, record.key, int(requests[i].expected_version or 0), current
                )
            if not retry:
                break
            self.retries += len(retry)
            pending = retry
        else:
            raise StoreError(f"too much contention writing {namespace} on {self._location}")
        return [r for r in results if r is not None]

    def replace_all(
        self,
        namespace: str,
        records: Mapping[str, Record],
        *,
        expected_head: int | None = None,
        preserve: Iterable[str] = (),
    ) -> None:
        self._writable()
        check_restorable(namespace, records)
        keys = self._keys(namespace)
        redis = _redis.require_client()

        def write() -> None:
            with self._client.pipeline(transaction=True) as pipe:
                # Watched: any write meanwhile aborts this one (WatchError -> conflict).
                pipe.watch(keys["jseq"], keys["rec"], keys["ver"])
                if expected_head is not None and int(pipe.get(keys["jseq"]) or 0) != expected_head:
                    raise VersionConflict(namespace, "*", expected_head, None)
                kept = set(preserve) - set(records)
                gone: builtins.list[str] = []
                if kept:
                    names = {_redis.text(k) for k in pipe.hkeys(keys["rec"])}
                    names |= {_redis.text(k) for k in pipe.hkeys(keys["ver"])}
                    gone = sorted(names - kept)
                pipe.multi()
                if not kept:
                    pipe.delete(keys["rec"], keys["ver"])
                elif gone:
                    pipe.hdel(keys["rec"], *gone)
                    pipe.hdel(keys["ver"], *gone)
                if gone or not kept:
                    pipe.srem(keys["dead"], *(gone or [""]))
                if not kept:
                    pipe.delete(keys["dead"])
                dead = [k for k, r in records.items() if r.deleted]
                if dead:
                    pipe.sadd(keys["dead"], *dead)
                if records:
                    pipe.hset(
                        keys["rec"], mapping={k: dumps(r.to_dict()) for k, r in records.items()}
                    )
                    pipe.hset(keys["ver"], mapping={k: r.version for k, r in records.items()})
                pipe.sadd(keys["namespaces"], namespace)
                pipe.execute()

        try:
            self._call(write)
        except redis.exceptions.WatchError as exc:
            raise VersionConflict(namespace, "*", int(expected_head or 0), None) from exc

    def drop(self, namespace: str) -> None:
        self._writable()
        keys = self._keys(namespace)
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(*[v for k, v in keys.items() if k != "namespaces"])
        pipe.srem(keys["namespaces"], namespace)
        self._call(pipe.execute)

    # -- reading -------------------------------------------------------------------
    def get(self, namespace: str, key: str) -> Record | None:
        keys = self._keys(namespace)
        pipe = self._client.pipeline(transaction=True)
        pipe.hget(keys["rec"], key)
        pipe.hget(keys["ver"], key)
        body, version = self._call(pipe.execute)
        found = self._decode(namespace, key, body, version)
        if isinstance(found, Damage):
            raise CorruptRecordError(found)
        return found

    @staticmethod
    def _decode(namespace: str, key: str, body: Any, version: Any) -> Record | Damage | None:
        if body is None and version is None:
            return None
        if body is None:
            return Damage(namespace, "record", key, "record missing (its version is still indexed)")
        try:
            indexed = int(version) if version is not None else None
        except ValueError:
            indexed = None
        return decode_indexed(_redis.text(body), namespace, key, indexed)

    def scan(self, namespace: str) -> RecordScan:
        keys = self._keys(namespace)
        pipe = self._client.pipeline(transaction=True)
        pipe.hgetall(keys["rec"])
        pipe.hgetall(keys["ver"])
        bodies, versions = self._call(pipe.execute)
        bodies = {_redis.text(k): v for k, v in bodies.items()}
        versions = {_redis.text(k): v for k, v in versions.items()}
        out = RecordScan()
        for key in sorted(set(bodies) | set(versions)):
            found = self._decode(namespace, key, bodies.get(key), versions.get(key))
            if isinstance(found, Damage):
                out.damaged.append(found)
            elif found is not None:
                out.records[key] = found
        return out

    def keys(self, namespace: str) -> builtins.list[str]:
        # Names only: the version index minus the tombstone set, no value is read.
        keys = self._keys(namespace)
        pipe = self._client.pipeline(transaction=True)
        pipe.hkeys(keys["ver"])
        pipe.smembers(keys["dead"])
        names, dead = self._call(pipe.execute)
        gone = {_redis.text(k) for k in dead}
        return sorted(n for n in (_redis.text(k) for k in names) if n not in gone)

    def namespaces(self) -> builtins.list[str]:
        raw = self._call(lambda: self._client.smembers(f"{self.prefix}:namespaces"))
        return sorted(_redis.text(n) for n in raw)

    def head(self, namespace: str) -> int:
        return int(self._call(lambda: self._client.get(self._keys(namespace)["jseq"])) or 0)

    def journal(self, namespace: str, *, after: int = 0) -> JournalScan:
        key = self._keys(namespace)["jrnl"]
        raw = self._call(lambda: self._tail_script(keys=[key], args=[int(after)]))
        out = JournalScan()
        for position, item in enumerate(raw):
            entry = _redis.text(item)
            seq_text, sep, body = entry.partition(":")
            if not sep or not seq_text.isdigit():
                out.damaged.append(
                    Damage(namespace, "journal", f"#{position}", "entry cannot be decoded")
                )
                continue
            seq = int(seq_text)
            if seq <= after:
                continue
            found = decode_record(body, namespace, "journal", seq_text)
            if isinstance(found, Damage):
                out.damaged.append(found)
            else:
                out.entries.append(JournalEntry(seq, found))
        return out

    # -- snapshots -----------------------------------------------------------------
    def snapshot(self, namespace: str, *, keep: int = DEFAULT_KEEP_SNAPSHOTS) -> SnapshotInfo:
        self._writable()
        if keep < 1:
            raise StoreError("keep must be at least 1 snapshot")
        keys = self._keys(namespace)
        pipe = self._client.pipeline(transaction=True)
        pipe.hgetall(keys["rec"])
        pipe.hgetall(keys["ver"])
        pipe.get(keys["jseq"])
        bodies, versions, head_raw = self._call(pipe.execute)
        head = int(head_raw or 0)
        bodies = {_redis.text(k): v for k, v in bodies.items()}
        versions = {_redis.text(k): v for k, v in versions.items()}
        records: dict[str, Record] = {}
        for key in sorted(set(bodies) | set(versions)):
            found = self._decode(namespace, key, bodies.get(key), versions.get(key))
            if isinstance(found, Damage):
                raise CorruptRecordError(found)
            if found is not None:
                records[key] = found
        body, digest = encode_snapshot(records.values())
        taken = time.time()
        # Header first, body after a newline (JSON never holds a raw one), so listing
        # snapshots reads headers only.
        meta = dumps({"at": taken, "count": len(records), "sum": digest}) + "\n" + body
        snap_id = self._call(
            lambda: self._snap_script(
                keys=[keys["snap"], keys["snapid"], keys["jrnl"], keys["namespaces"]],
                args=[head, meta, keep, namespace],
            )
        )
        return SnapshotInfo(int(snap_id), namespace, taken, head, len(records), digest)

    def _snapshot_entries(
        self, namespace: str, *, bodies: bool = False
    ) -> builtins.list[tuple[int, int, dict[str, Any], str | None]]:
        """``(id, journal seq, header, body or None)`` per snapshot, oldest first."""
        key = self._keys(namespace)["snap"]
        if bodies:
            raw = self._call(lambda: self._client.lrange(key, 0, -1))
        else:
            raw = self._call(lambda: self._heads_script(keys=[key], args=[]))
        out: builtins.list[tuple[int, int, dict[str, Any], str | None]] = []
        for position, item in enumerate(raw):
            text = _redis.text(item)
            head, newline, body = text.partition("\n")
            parts = head.split(":", 2)
            try:
                meta = json.loads(parts[2])
                if not isinstance(meta, dict):
                    raise ValueError("not an object")
                out.append((int(parts[0]), int(parts[1]), meta, body if newline else None))
            except (ValueError, IndexError):
                # An unreadable entry still shows, as a snapshot that fails to load.
                out.append((-(position + 1), 0, {}, None))
        return out

    def snapshots(self, namespace: str) -> builtins.list[SnapshotInfo]:
        out = []
        for snap_id, seq, meta, _body in reversed(self._snapshot_entries(namespace)):
            out.append(
                SnapshotInfo(
                    snap_id,
                    namespace,
                    float(meta.get("at", 0.0) or 0.0),
                    seq,
                    int(meta.get("count", 0) or 0),
                    str(meta.get("sum", "")),
                )
            )
        return out

    def load_snapshot(self, namespace: str, snapshot_id: int) -> dict[str, Record]:
        for snap_id, _seq, meta, body in self._snapshot_entries(namespace, bodies=True):
            if snap_id != snapshot_id:
                continue
            if body is None or "sum" not in meta:
                raise CorruptRecordError(
                    Damage(namespace, "snapshot", str(snapshot_id), "cannot be decoded")
                )
            return decode_snapshot(body, str(meta["sum"]), namespace, str(snap_id))
        raise StoreError(f"no snapshot {snapshot_id} of {namespace} in {self._location}")
