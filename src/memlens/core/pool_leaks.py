"""Borrows from object pools, counted where they happened: the pools write, the doctor reads.

A pool leak is an object borrowed from a pool and never returned: either dropped
(the pool notices through a weak reference: *lost*) or kept somewhere (still
*outstanding*). Pools (``memlens.remedies.MemoryPool``) record every borrow, return
and loss here, keyed by pool name, kind and the ``file:line`` that borrowed; the
leak doctor compares :func:`snapshot` before and after its run and names the pool
and the line when borrows pile up with the calls. This module sits in ``core`` so
that the doctor (an analysis) can read what the remedies (composition) write
without importing them. Recording is one dictionary update under a lock.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

# (pool name, kind, borrowing file:line)
Key = tuple[str, str, str]


@dataclass(frozen=True)
class BorrowCounts:
    """Borrows at one site since the process started (or forked)."""

    borrowed: int = 0
    returned: int = 0
    lost: int = 0  # dropped without being returned
    type_name: str = ""  # the borrowed objects' type, as last seen

    @property
    def outstanding(self) -> int:
        """Borrowed and neither returned nor dropped: still held somewhere."""
        return self.borrowed - self.returned - self.lost


# Re-entrant: a loss is recorded from a weak-reference callback, which a collection can
# run inside any allocation, also one made while this thread holds the lock.
_lock = threading.RLock()
_counts: dict[Key, list[int]] = {}  # [borrowed, returned, lost]
_types: dict[Key, str] = {}


def record_borrow(pool: str, kind: str, site: str, type_name: str = "") -> None:
    """An object of ``kind`` was lent by ``pool`` to the code at ``site``."""
    key = (pool, kind, site)
    with _lock:
        _counts.setdefault(key, [0, 0, 0])[0] += 1
        if type_name:
            _types[key] = type_name


def record_return(pool: str, kind: str, site: str) -> None:
    """An object lent to ``site`` came back."""
    with _lock:
        _counts.setdefault((pool, kind, site), [0, 0, 0])[1] += 1


def record_lost(pool: str, kind: str, site: str) -> None:
    """An object lent to ``site`` was collected without coming back."""
    with _lock:
        _counts.setdefault((pool, kind, site), [0, 0, 0])[2] += 1


def snapshot() -> dict[Key, BorrowCounts]:
    """The counts per (pool, kind, site) now."""
    with _lock:
        return {k: BorrowCounts(v[0], v[1], v[2], _types.get(k, "")) for k, v in _counts.items()}


def since(before: dict[Key, BorrowCounts]) -> dict[Key, BorrowCounts]:
    """What changed after ``before`` (a :func:`snapshot`), sites with no change left out."""
    out = {}
    for key, now in snapshot().items():
        was = before.get(key, BorrowCounts())
        delta = BorrowCounts(
            now.borrowed - was.borrowed,
            now.returned - was.returned,
            now.lost - was.lost,
            now.type_name,
        )
        if delta.borrowed or delta.returned or delta.lost:
            out[key] = delta
    return out


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.RLock()  # a parent thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
