"""The session store on Redis: the same sessions as SQLite, shared by a fleet.

Keys under prefix ``P``: ``P:session:ID`` is a hash with the summary columns and the
two checksummed blobs (the session and its series, encoded exactly as in SQLite by
:mod:`memlens.store.codec`); ``P:sessions`` is a sorted set of ids scored by start
time, newest last. A save writes both in one ``MULTI``/``EXEC`` transaction, so a
listing never sees a half-saved session. ``readonly=True`` refuses every write.
"""

from __future__ import annotations

import builtins
from datetime import datetime, timezone
from typing import Any

from memlens.core.errors import NotFoundError, StoreError
from memlens.core.series import Series
from memlens.core.session import Session
from memlens.store import _redis, codec
from memlens.store.base import SessionRow, pick_id, series_from, session_from

_SUMMARY = (
    "name",
    "kind",
    "status",
    "started_at",
    "duration",
    "peak_rss",
    "growth",
    "saved_at",
    "codec",
    "body_sha256",
    "series_sha256",
)


class RedisSessionStore(_redis.RedisStoreBase):
    """A :class:`~memlens.store.base.SessionStore` on a Redis server."""

    def __init__(self, url: str, *, readonly: bool = False, timeout: float = 5.0) -> None:
        super().__init__(url, readonly=readonly, timeout=timeout)
        self._index = f"{self.prefix}:sessions"

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}:session:{session_id}"

    # -- writing -------------------------------------------------------------------
    def save(self, session: Session) -> str:
        self._writable()
        data = session.to_dict()
        series = data.pop("series")
        body, body_sum = codec.encode(data)
        series_blob, series_sum = codec.encode(series)
        fields = {
            "name": session.name,
            "kind": session.kind,
            "status": session.status,
            "started_at": session.metadata.started_at,
            "duration": repr(float(session.duration)),
            "peak_rss": int(session.peak_rss),
            "growth": int(session.growth),
            "saved_at": _now(),
            "codec": codec.CODEC,
            "body": body,
            "body_sha256": body_sum,
            "series": series_blob,
            "series_sha256": series_sum,
        }
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(self._key(session.id))
        pipe.hset(self._key(session.id), mapping=fields)
        pipe.zadd(self._index, {session.id: _score(session.metadata.started_at)})
        self._call(pipe.execute)
        return session.id

    def save_analysis(self, session_id: str, key: str, result: Any) -> None:
        self._writable()
        redis = _redis.require_client()
        full_id = self.resolve(session_id)
        hkey = self._key(full_id)

        def update() -> None:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.watch(hkey)
                got = pipe.hmget(hkey, ["codec", "body", "body_sha256"])
                if got[1] is None:
                    raise NotFoundError(f"no session {full_id!r} in {self._location}")
                data = codec.decode(
                    bytes(got[1]), _redis.text(got[2]), _redis.text(got[0]), f"session {full_id}"
                )
                data.setdefault("analyses", {})[key] = result
                try:
                    blob, digest = codec.encode(data)
                except (TypeError, ValueError) as exc:
                    raise StoreError(f"analysis {key!r} is not JSON-serializable: {exc}") from exc
                pipe.multi()
                pipe.hset(
                    hkey,
                    mapping={
                        "body": blob,
                        "body_sha256": digest,
                        "codec": codec.CODEC,
                        "saved_at": _now(),
                    },
                )
                pipe.execute()

        for _ in range(100):
            try:
                self._call(update)
                return
            except redis.exceptions.WatchError:
                continue  # another writer changed it: read again
        raise StoreError(f"cannot update session {full_id}: too much contention")

    def delete(self, session_id: str) -> str:
        self._writable()
        full_id = self.resolve(session_id)
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(self._key(full_id))
        pipe.zrem(self._index, full_id)
        self._call(pipe.execute)
        return full_id

    # -- reading -------------------------------------------------------------------
    def _ids(self) -> builtins.list[str]:
        raw = self._call(lambda: self._client.zrevrange(self._index, 0, -1))
        return [_redis.text(i) for i in raw]

    def resolve(self, session_id: str) -> str:
        return pick_id(session_id, self._ids(), self._location)

    def _blob(self, full_id: str, which: str) -> Any:
        sum_field = f"{which}_sha256"
        what = f"session {full_id} {'data' if which == 'body' else 'samples'}"
        got = self._call(
            lambda: self._client.hmget(self._key(full_id), ["codec", which, sum_field])
        )
        if got[1] is None:
            raise StoreError(f"{what} is missing from {self._location}")
        return codec.decode(bytes(got[1]), _redis.text(got[2] or b""), _redis.text(got[0]), what)

    def load(self, session_id: str) -> Session:
        full_id = self.resolve(session_id)
        data = self._blob(full_id, "body")
        data["series"] = self._blob(full_id, "series")
        return session_from(data, full_id)

    def samples(self, session_id: str) -> Series:
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
        ids = self._ids()
        pipe = self._client.pipeline(transaction=False)
        for session_id in ids:
            pipe.hmget(self._key(session_id), list(_SUMMARY))
            if verify:
                pipe.hmget(self._key(session_id), ["body", "series"])
            else:
                pipe.hstrlen(self._key(session_id), "body")
        replies = self._call(pipe.execute)
        rows = []
        for n, session_id in enumerate(ids):
            summary = [_redis.text(v) if v is not None else None for v in replies[2 * n]]
            extra = replies[2 * n + 1]
            row = _row(session_id, summary, extra, verify)
            if kind is not None and row.kind != kind:
                continue
            if status is not None and row.status != status:
                continue
            rows.append(row)
        rows.sort(key=lambda r: (r.started_at, r.saved_at), reverse=True)
        return rows[:limit] if limit is not None else rows


def _row(
    session_id: str, summary: builtins.list[str | None], extra: Any, verify: bool
) -> SessionRow:
    values = dict(zip(_SUMMARY, summary))
    corrupted = any(values[f] is None for f in ("name", "started_at", "body_sha256"))
    stored = 0
    if verify:
        body, series = extra
        stored = len(body or b"") + len(series or b"")
        corrupted = corrupted or not (
            body is not None
            and series is not None
            and values["codec"] == codec.CODEC
            and codec.checksum(bytes(body)) == values["body_sha256"]
            and codec.checksum(bytes(series)) == values["series_sha256"]
        )
    else:
        stored = int(extra or 0)

    def number(name: str, kind: type) -> Any:
        try:
            return kind(float(values[name] or 0))
        except ValueError:
            return kind(0)

    return SessionRow(
        id=session_id,
        name=values["name"] or "",
        kind=values["kind"] or "",
        status=values["status"] or "",
        started_at=values["started_at"] or "",
        duration=number("duration", float),
        peak_rss=number("peak_rss", int),
        growth=number("growth", int),
        saved_at=values["saved_at"] or "",
        stored_bytes=stored,
        corrupted=corrupted,
    )


def _score(started_at: str) -> float:
    try:
        return datetime.fromisoformat(started_at).timestamp()
    except (ValueError, TypeError):
        return 0.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
