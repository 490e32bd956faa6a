"""What a sync returns, and how a conflict between a local and a remote write is decided.

A *conflict* is a key changed locally since the last sync while another writer
stored a newer version of it. Every conflict is decided by a strategy and listed
in :class:`SyncResult` with both values, so a losing write is reported, never
silently dropped:

- ``"remote-wins"``: keep the stored version, drop the local change;
- ``"local-wins"``: write the local value over it (as the next version);
- ``"timestamp"``: the later update time wins (the remote on a tie);
- a callable ``(key, local_value, remote_record) -> value``: write its result
  (``"merged"``), e.g. a union of two lists.

Keys never changed locally simply take the newest stored version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from memlens.core.errors import ConfigError
from memlens.store.records import Record

Merge = Callable[[str, Any, Record], Any]
Strategy = Literal["remote-wins", "local-wins", "timestamp"] | Merge
STRATEGIES = ("remote-wins", "local-wins", "timestamp")


@dataclass(frozen=True)
class Conflict:
    """One key written on both sides since the last sync, and how it was decided.

    ``resolution`` is ``"remote"`` (the local change was dropped), ``"local"`` (the
    local value was written over the remote) or ``"merged"``.
    """

    key: str
    local_value: Any
    remote_value: Any
    local_deleted: bool
    remote_deleted: bool
    base_version: int
    remote_version: int
    local_updated_at: float
    remote_updated_at: float
    remote_writer: str
    strategy: str
    resolution: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SyncResult:
    """The outcome of one ``sync_session_memory`` call.

    ``version`` is the session's journal position after the sync; ``synced_items``
    counts keys written to the store plus keys taken from it. On failure
    (``success=False``) local changes are kept and ``error`` says why.
    """

    success: bool
    conflicts_resolved: int
    version: int
    synced_items: int
    conflicts: list[Conflict] = field(default_factory=list)
    pushed: int = 0
    pulled: int = 0
    retries: int = 0
    error: str | None = None
    recovered: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["conflicts"] = [c.to_dict() for c in self.conflicts]
        return out


def check_strategy(strategy: Any, what: str = "strategy") -> None:
    """Raise ``ConfigError`` unless ``strategy`` is a known name or a callable."""
    if callable(strategy) or strategy in STRATEGIES:
        return
    raise ConfigError(
        f"invalid {what} {strategy!r}: expected one of {', '.join(STRATEGIES)} or a callable"
    )


def pick_strategy(key: str, default: Strategy, per_key: Mapping[str, Strategy] | None) -> Strategy:
    """The strategy for ``key``: an exact entry, else the longest ``prefix*`` entry, else default."""
    if not per_key:
        return default
    if key in per_key:
        return per_key[key]
    best: tuple[int, Strategy] | None = None
    for pattern, strategy in per_key.items():
        prefix = pattern[:-1]
        matches = pattern.endswith("*") and key.startswith(prefix)
        if matches and (best is None or len(pattern) > best[0]):
            best = (len(pattern), strategy)
    return best[1] if best else default


def decide(
    key: str,
    strategy: Strategy,
    local_value: Any,
    local_deleted: bool,
    local_updated_at: float,
    base_version: int,
    remote: Record,
) -> tuple[Conflict, Any, bool]:
    """Decide one conflict: ``(conflict, value to keep, keep local?)``.

    When the third item is False the remote record stands and the local change is
    dropped (and reported); otherwise the returned value is written as the next version.
    """
    name = strategy if isinstance(strategy, str) else getattr(strategy, "__name__", "custom")
    keep_local: bool
    value = local_value
    if strategy == "remote-wins":
        keep_local, resolution = False, "remote"
    elif strategy == "local-wins":
        keep_local, resolution = True, "local"
    elif strategy == "timestamp":
        keep_local = local_updated_at > remote.updated_at
        resolution = "local" if keep_local else "remote"
    elif callable(strategy):
        value = strategy(key, local_value, remote)
        keep_local, resolution = True, "merged"
    else:
        raise ConfigError(f"invalid strategy {strategy!r}")
    conflict = Conflict(
        key=key,
        local_value=local_value,
        remote_value=remote.value,
        local_deleted=local_deleted,
        remote_deleted=remote.deleted,
        base_version=base_version,
        remote_version=remote.version,
        local_updated_at=local_updated_at,
        remote_updated_at=remote.updated_at,
        remote_writer=remote.writer,
        strategy=str(name),
        resolution=resolution,
    )
    return conflict, value, keep_local
