"""Opening a large memory without reading it: values load on first use.

:func:`open_lazy` lists a session's keys (an index read, no value decoded) and hands
out a transparent proxy per value (``lazy_object_proxy.Proxy``): the record is read
and its checksum verified the first time the value is *used* — an attribute, an
index, ``len()``, ``==`` — and never before. Archived originals of the context
memory load the same way with :func:`lazy_record`. :func:`open_eager` is the
baseline that reads and verifies everything up front.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from memlens.core.errors import NotFoundError, require
from memlens.store.records import RecordStore


def lazy_record(store: RecordStore, namespace: str, key: str) -> Any:
    """A proxy for the value of ``namespace/key``, read (and verified) on first use.

    A missing or deleted record raises :class:`~memlens.core.errors.NotFoundError`
    and a damaged one :class:`~memlens.store.records.CorruptRecordError` — at first
    use, where the value is needed.
    """
    proxy_module = require("lazy_object_proxy", "shared")

    def load() -> Any:
        record = store.get(namespace, key)
        if record is None or record.deleted:
            raise NotFoundError(f"no record {key!r} in {namespace}")
        return record.value

    return proxy_module.Proxy(load)


class LazyMemory(Mapping[str, Any]):
    """A read-only mapping of a session's records whose values load on first use."""

    def __init__(self, store: RecordStore, namespace: str) -> None:
        self.store = store
        self.namespace = namespace
        self._keys = store.keys(namespace)
        self._known = set(self._keys)
        self._proxies: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._known:
            raise KeyError(key)
        proxy = self._proxies.get(key)
        if proxy is None:
            proxy = self._proxies[key] = lazy_record(self.store, self.namespace, key)
        return proxy

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def loaded(self) -> int:
        """How many values have actually been read so far."""
        return sum(1 for p in self._proxies.values() if p.__resolved__)


def open_lazy(store: RecordStore, namespace: str) -> LazyMemory:
    """The session's records as a mapping whose values load on first use."""
    return LazyMemory(store, namespace)


def open_eager(store: RecordStore, namespace: str) -> dict[str, Any]:
    """Every live value of the session, read and verified now (the baseline)."""
    return {r.key: r.value for r in store.list(namespace)}
