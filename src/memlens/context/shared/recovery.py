"""Detecting and repairing damaged memory: checksums, last good snapshot, journal replay.

:func:`check_memory` compares what a namespace holds with what its newest readable
snapshot plus the journal after it say it should hold, and lists every difference:
records that fail their checksum, records missing or older than the journal says,
journal entries and snapshots that do not read. :func:`recover_corrupted_memory`
then rebuilds the namespace:

1. detect (``check_memory``);
2. load the newest snapshot that passes its checksum (older ones if it fails);
3. apply the journal after it, entry by entry, each entry verified;
4. keep intact records that are at least as new as that state; take the rebuilt
   record for everything damaged, missing or stale; for keys no snapshot or
   journal entry covers, call ``rebuild`` (a full rebuild from an archive) if given,
   else report them as lost;
5. validate every record, write the result back in one conditional step (retried
   if another writer got in between), and take a fresh snapshot, which becomes the
   new last-known-good state and retires damaged snapshots and journal entries.

Nothing is skipped silently: every detected problem is in the result, and keys that
could not be recovered are listed in ``lost``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from memlens.core.errors import StoreError
from memlens.store.records import (
    CorruptRecordError,
    Damage,
    PutRequest,
    Record,
    RecordStore,
    VersionConflict,
)

#: Rebuild callback: the keys that could not be recovered -> their values (or fewer).
Rebuild = Callable[[list[str]], Mapping[str, Any]]


@dataclass(frozen=True)
class Problem:
    """One difference between what is stored and what should be."""

    kind: str  # damaged | missing | stale | unjournaled | diverged
    where: str  # record | journal | snapshot
    ref: str
    detail: str

    def describe(self) -> str:
        return f"{self.where} {self.ref}: {self.kind} ({self.detail})"


@dataclass
class CheckReport:
    """What :func:`check_memory` found in one namespace."""

    namespace: str
    records: int = 0
    journal_entries: int = 0
    snapshots: int = 0
    good_snapshot: int | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out


@dataclass
class RecoveryResult:
    """What :func:`recover_corrupted_memory` did.

    ``method`` is ``"none"`` (nothing was wrong), ``"snapshot+journal"``, ``"journal"``
    (no readable snapshot, the journal alone), ``"rebuild"`` (the archive callback
    supplied keys no snapshot or journal covered) or ``"failed"``.
    """

    session_id: str
    method: str
    detected: list[Problem] = field(default_factory=list)
    snapshot_id: int | None = None
    journal_applied: int = 0
    restored: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    valid: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Expected:
    records: dict[str, Record]
    snapshot_id: int | None
    journal_applied: int
    problems: list[Problem]


def _expected_state(store: RecordStore, namespace: str) -> _Expected:
    """The newest readable snapshot plus the journal after it."""
    problems: list[Problem] = []
    base: dict[str, Record] = {}
    base_seq = 0
    used: int | None = None
    for info in store.snapshots(namespace):
        try:
            base = store.load_snapshot(namespace, info.id)
        except CorruptRecordError as exc:
            problems.append(_problem("damaged", exc.damage))
            continue
        base_seq, used = info.journal_seq, info.id
        break
    journal = store.journal(namespace, after=base_seq)
    problems.extend(_problem("damaged", d) for d in journal.damaged)
    applied = 0
    for entry in journal.entries:
        current = base.get(entry.record.key)
        if current is None or entry.record.version > current.version:
            base[entry.record.key] = entry.record
            applied += 1
    return _Expected(base, used, applied, problems)


def _problem(kind: str, damage: Damage) -> Problem:
    return Problem(kind, damage.where, damage.ref, damage.reason)


def check_memory(store: RecordStore, namespace: str) -> CheckReport:
    """Every difference between the namespace and its snapshot + journal (see module doc)."""
    scan = store.scan(namespace)
    expected = _expected_state(store, namespace)
    report = CheckReport(
        namespace=namespace,
        records=len(scan.records),
        journal_entries=len(store.journal(namespace).entries),
        snapshots=len(store.snapshots(namespace)),
        good_snapshot=expected.snapshot_id,
        problems=list(expected.problems),
    )
    damaged_keys = {d.ref for d in scan.damaged if d.where == "record"}
    report.problems.extend(_problem("damaged", d) for d in scan.damaged)
    for key, want in sorted(expected.records.items()):
        if key in damaged_keys:
            continue
        have = scan.records.get(key)
        if have is None:
            report.problems.append(
                Problem("missing", "record", key, f"the journal has version {want.version}")
            )
        elif have.version < want.version:
            report.problems.append(
                Problem(
                    "stale", "record", key, f"version {have.version}, journal has {want.version}"
                )
            )
        elif have.version == want.version and have.checksum != want.checksum:
            report.problems.append(
                Problem("diverged", "record", key, f"version {have.version} differs from journal")
            )
    for key, have in sorted(scan.records.items()):
        known = expected.records.get(key)
        if known is None or have.version > known.version:
            report.problems.append(
                Problem(
                    "unjournaled",
                    "record",
                    key,
                    f"version {have.version} is newer than snapshot and journal",
                )
            )
    return report


def recover_corrupted_memory(
    store: RecordStore,
    namespace: str,
    *,
    rebuild: Rebuild | None = None,
    attempts: int = 5,
) -> RecoveryResult:
    """Detect, rebuild from the last good snapshot + journal (or ``rebuild``), validate, save."""
    result = RecoveryResult(namespace, "none")
    for _attempt in range(attempts):
        head = store.head(namespace)
        report = check_memory(store, namespace)
        result.detected = report.problems
        if report.ok:
            result.valid = True
            return result
        expected = _expected_state(store, namespace)
        scan = store.scan(namespace)
        repaired: dict[str, Record] = {}
        restored: list[str] = []
        damaged_keys = {d.ref for d in scan.damaged if d.where == "record"}
        for key, have in scan.records.items():
            want = expected.records.get(key)
            if want is None or have.version > want.version:
                repaired[key] = have  # newer than anything journaled: keep, it is intact
            elif have.version == want.version and have.checksum == want.checksum:
                repaired[key] = have
        for key, want in expected.records.items():
            if key not in repaired:
                repaired[key] = want
                restored.append(key)
        lost = sorted(k for k in damaged_keys if k not in repaired)
        try:
            # Damaged records nothing can replace stay as they are: never delete data.
            store.replace_all(namespace, repaired, expected_head=head, preserve=lost)
        except VersionConflict:
            continue  # someone wrote meanwhile: check again from the new state
        rebuilt: list[str] = []
        if lost and rebuild is not None:
            values = rebuild(list(lost))
            requests = [PutRequest(k, values[k]) for k in lost if k in values]
            for request, outcome in zip(
                requests, store.put_many(namespace, requests, writer="memlens-recovery")
            ):
                if isinstance(outcome, Record):
                    rebuilt.append(request.key)
            lost = [k for k in lost if k not in rebuilt]
        result.snapshot_id = expected.snapshot_id
        result.journal_applied = expected.journal_applied
        result.restored = sorted(restored)
        result.rebuilt = rebuilt
        result.lost = lost
        if rebuilt:
            result.method = "rebuild"
        elif expected.snapshot_id is not None:
            result.method = "snapshot+journal"
        else:
            result.method = "journal"
        try:
            # The repaired state becomes the last known good one; keep=1 retires the
            # damaged snapshots and journal entries, which would otherwise stay flagged.
            store.snapshot(namespace, keep=1)
        except StoreError as exc:
            result.error = f"repaired, but no fresh snapshot: {exc}"
        result.valid = check_memory(store, namespace).ok and not lost
        if not result.valid and result.error is None:
            result.error = "some records could not be recovered" if lost else "still inconsistent"
        if lost and not rebuilt and not restored:
            result.method = "failed"
        return result
    result.method = "failed"
    result.error = f"the namespace kept changing during {attempts} recovery attempts"
    return result
