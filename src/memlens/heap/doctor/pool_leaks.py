"""Pool leaks named by the doctor: objects borrowed from a memlens pool and never returned.

memlens's pools (``memlens.remedies.MemoryPool``) count every borrow, return and
loss in :mod:`memlens.core.pool_leaks`, by pool, kind and borrowing line. The
doctor takes a snapshot when its warm-up ends (:func:`start`, :class:`Borrows`) and,
once the diagnosis is built, :func:`name_pool_leaks` compares: borrows that pile up with
the calls (still held somewhere, or dropped without being returned) are a pool
leak, and the finding names the pool, the kind and the line that borrowed them.

A finding the doctor already made about the same objects is completed rather than
repeated: one whose retaining path ends in the pool's record of lent objects
(``MemoryPool._lent``) becomes the pool leak, and one whose path holds objects of
the borrowed type says where they were borrowed and how to give them back.
"""

from __future__ import annotations

from memlens.core import pool_leaks
from memlens.core.findings import Remedy
from memlens.heap.doctor.diagnosis import LEAK, Diagnosis, Finding
from memlens.heap.doctor.iterations import Engine
from memlens.heap.doctor.sites import short_path

CATEGORY = "pool_leak"
_POOL_TYPE = "memlens.remedies.pools.MemoryPool"  # how a path names a pool (not imported)
# Borrows left at one line count as a leak from this many, and at least one per ten calls.
_MIN_LEFT = 5
_MIN_PER_CALL = 0.1


class Borrows:
    """The pools' borrow counts once the doctor's warm-up is over (what the first calls
    borrow for good, a connection opened once, is not a leak)."""

    def __init__(self) -> None:
        self.before = pool_leaks.snapshot()
        self.from_call = 0
        self._warm = False

    def after_iteration(self, engine: Engine) -> None:
        """Call after each iteration; takes the snapshot when the warm-up ends."""
        if not self._warm and 0 <= engine.warmup <= engine.iterations:
            self._warm = True
            self.before = pool_leaks.snapshot()
            self.from_call = engine.iterations


def start() -> Borrows:
    """Start counting the pools' borrows for one doctor run."""
    return Borrows()


def name_pool_leaks(diag: Diagnosis, borrows: Borrows) -> None:
    """Add or complete findings for borrows not returned since the warm-up ended."""
    calls = max(1, diag.iterations - borrows.from_call)
    for (pool, kind, site), d in sorted(pool_leaks.since(borrows.before).items()):
        left = d.outstanding + d.lost
        if left < max(_MIN_LEFT, _MIN_PER_CALL * calls):
            continue
        _name_one(diag, pool, kind, short_path(site), d, calls)


def _name_one(
    diag: Diagnosis, pool: str, kind: str, site: str, d: pool_leaks.BorrowCounts, calls: int
) -> None:
    what = f"{kind!r} objects" + (f" ({d.type_name})" if d.type_name else "")
    parts = []
    if d.outstanding > 0:
        parts.append(f"{d.outstanding} still held elsewhere")
    if d.lost > 0:
        parts.append(f"{d.lost} dropped without being returned")
    summary = (
        f"pool {pool!r}: {d.borrowed} {what} borrowed at {site} in {calls} calls, "
        f"{d.returned} returned ({', '.join(parts)})"
    )
    why = (
        "borrowed objects are kept elsewhere and never given back (put() or acquire())"
        if d.outstanding > 0
        else "borrowed objects are dropped without put(): the pool makes a new one each time"
    )
    fix = Remedy(
        f"return what you borrow from pool {pool!r}",
        f"with pool.acquire({kind!r}) as obj:  # put back on any exit\n    ...",
        "5 min",
    )
    details = {
        "pool": pool,
        "kind": kind,
        "borrowed_at": site,
        "borrowed": d.borrowed,
        "returned": d.returned,
        "outstanding": d.outstanding,
        "lost": d.lost,
        "per_call": (d.outstanding + d.lost) / calls,
    }
    record = next(
        (f for f in diag.findings if any(h.type_name == _POOL_TYPE for h in f.path)), None
    )
    if record is not None:
        # The pool's own record of lent objects grew: that is this pool leak, seen from
        # the heap; say so instead of "objects allocated here stay alive".
        record.category = CATEGORY
        record.summary = summary
        record.why = why
        record.remedies = [fix]
        record.details.update(details)
    holders = [
        f
        for f in diag.findings
        if f is not record and d.type_name and any(h.type_name == d.type_name for h in f.path)
    ]
    for f in holders:
        f.why = f"{f.why}; the {d.type_name} objects were borrowed from pool {pool!r} at {site} and never returned"
        f.remedies.insert(0, fix)
        f.details.update(details)
    if record is None and not holders:
        finding = Finding(
            CATEGORY,
            site,
            why=why,
            type_name=d.type_name,
            objects_per_iteration=(d.outstanding + d.lost) / calls,
            remedies=[fix],
            evidence=["pool"],
        )
        finding.severity = "high" if d.outstanding > 0 else "medium"
        finding.summary = summary
        finding.details.update(details)
        diag.findings.append(finding)
    if diag.verdict != LEAK:
        diag.verdict = LEAK
        diag.reason = f"pool leak: {summary}"
