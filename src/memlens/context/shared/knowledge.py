"""Carrying what one session learned into another: preferences, patterns, shortcuts, tasks.

:meth:`SessionKnowledgeTransfer.extract_transferable_knowledge` reads a session's
records, their journal (how often and by whom each was written) and, when given, the
access predictor's learned sequences, and returns :class:`KnowledgeItem`s, each with
a confidence and the evidence behind it:

- **preference**: a record under ``pref``/``preference``/``settings`` (``.``, ``:`` or
  ``/`` separated) — confidence grows with how many writes agreed on the current
  value and how many writers made them;
- **common_task**: a record under ``task``/``tasks`` — confidence from how often it was
  written relative to the busiest task;
- **pattern**: "after A comes B", from the predictor, with the share of times it held;
- **shortcut**: "A leads to C through B", a two-step chain both of whose steps hold.

:meth:`~SessionKnowledgeTransfer.transfer_knowledge` writes items into another
session under ``knowledge/<kind>/<key>`` with ``merge_strategy``:

- ``"selective"``: only items with confidence above 0.8;
- ``"full"``: every item;
- ``"manual"``: ``on_candidates(items)`` returns the ones to keep.

An item whose key the target already holds with a different value is a conflict: it
is recorded, and the target's value stays unless the incoming item is more confident
(``"full"`` always writes). Each transfer is appended to the target's
``knowledge/_history`` record.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field
from typing import Any

from memlens.context.shared.manager import DistributedMemoryManager
from memlens.context.shared.prefetch import AccessPredictor
from memlens.core.errors import ConfigError

KNOWLEDGE_PREFIX = "knowledge/"
HISTORY_KEY = "knowledge/_history"
SELECTIVE_THRESHOLD = 0.8
MERGE_STRATEGIES = ("selective", "full", "manual")

_PREFERENCE = re.compile(r"^(pref|prefs|preference|preferences|settings)[.:/]", re.I)
_TASK = re.compile(r"^(task|tasks)[.:/]", re.I)


@dataclass(frozen=True)
class KnowledgeItem:
    """One transferable thing a session learned."""

    kind: str  # preference | common_task | pattern | shortcut
    key: str
    value: Any
    confidence: float
    evidence: tuple[str, ...]
    source: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["evidence"] = list(self.evidence)
        return out


@dataclass
class TransferResult:
    """What a transfer wrote, skipped and found in conflict."""

    source: str
    target: str
    strategy: str
    transferred: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SessionKnowledgeTransfer:
    """Extract knowledge from one session and transfer it to another (see module doc)."""

    def __init__(
        self, manager: DistributedMemoryManager, predictor: AccessPredictor | None = None
    ) -> None:
        self.manager = manager
        self.predictor = predictor

    # -- extraction ----------------------------------------------------------------
    def extract_transferable_knowledge(self, session_id: str) -> list[KnowledgeItem]:
        """Preferences, common tasks, patterns and shortcuts of ``session_id``."""
        values = self.manager.items(session_id)
        history = self._write_history(session_id)
        items: list[KnowledgeItem] = []
        items.extend(self._preferences(session_id, values, history))
        items.extend(self._tasks(session_id, values, history))
        if self.predictor is not None:
            items.extend(self._patterns(session_id))
        items.sort(key=lambda i: (-i.confidence, i.kind, i.key))
        return items

    def _write_history(self, session_id: str) -> dict[str, list[tuple[Any, str]]]:
        """key -> [(value, writer)] of every journaled write, oldest first."""
        out: dict[str, list[tuple[Any, str]]] = {}
        journal = self.manager.store.journal(session_id)
        for entry in journal.entries:
            if not entry.record.deleted:
                out.setdefault(entry.record.key, []).append(
                    (entry.record.value, entry.record.writer)
                )
        return out

    def _preferences(
        self,
        session_id: str,
        values: dict[str, Any],
        history: dict[str, list[tuple[Any, str]]],
    ) -> list[KnowledgeItem]:
        out = []
        for key, value in values.items():
            if not _PREFERENCE.match(key):
                continue
            writes = history.get(key) or [(value, "")]
            agreeing = [w for v, w in writes if v == value]
            writers = {w for w in agreeing if w}
            # One write is a hint (0.5); agreement over more writes and writers firms it up.
            confidence = 1.0 - 0.5 / (len(agreeing) + 0.5 * max(0, len(writers) - 1))
            if len(agreeing) < len(writes):
                confidence *= len(agreeing) / len(writes)
            evidence = (
                f"{len(agreeing)} of {len(writes)} writes set this value",
                f"by {len(writers) or 1} writer(s)",
            )
            out.append(
                KnowledgeItem("preference", key, value, round(confidence, 3), evidence, session_id)
            )
        return out

    def _tasks(
        self,
        session_id: str,
        values: dict[str, Any],
        history: dict[str, list[tuple[Any, str]]],
    ) -> list[KnowledgeItem]:
        counts = {k: len(history.get(k, [])) or 1 for k in values if _TASK.match(k)}
        if not counts:
            return []
        busiest = max(counts.values())
        out = []
        for key, count in counts.items():
            confidence = min(1.0, count / busiest) * (1.0 - 1.0 / (count + 1))
            evidence = (f"written {count} time(s); the busiest task was written {busiest}",)
            out.append(
                KnowledgeItem(
                    "common_task", key, values[key], round(confidence, 3), evidence, session_id
                )
            )
        return out

    def _patterns(self, session_id: str, min_support: int = 3) -> list[KnowledgeItem]:
        assert self.predictor is not None
        out: list[KnowledgeItem] = []
        first_order: dict[Hashable, dict[Hashable, tuple[int, int]]] = {}
        for context, nxt, count, total in self.predictor.transitions(min_support):
            if len(context) != 1:
                continue
            first_order.setdefault(context[0], {})[nxt] = (count, total)
            share = count / total
            out.append(
                KnowledgeItem(
                    "pattern",
                    f"{context[0]} -> {nxt}",
                    {"after": str(context[0]), "next": str(nxt)},
                    round(share * (1.0 - 1.0 / (count + 1)), 3),
                    (f"{count} of {total} accesses after {context[0]} went to {nxt}",),
                    session_id,
                )
            )
        for a, nexts in first_order.items():
            for b, (count_ab, total_a) in nexts.items():
                for c, (count_bc, total_b) in first_order.get(b, {}).items():
                    if c in (a, b):
                        continue
                    confidence = (count_ab / total_a) * (count_bc / total_b)
                    out.append(
                        KnowledgeItem(
                            "shortcut",
                            f"{a} => {c}",
                            {"from": str(a), "via": str(b), "to": str(c)},
                            round(confidence * (1.0 - 1.0 / (min(count_ab, count_bc) + 1)), 3),
                            (
                                f"{a} -> {b} in {count_ab} of {total_a}",
                                f"{b} -> {c} in {count_bc} of {total_b}",
                            ),
                            session_id,
                        )
                    )
        return out

    # -- transfer ------------------------------------------------------------------
    def transfer_knowledge(
        self,
        knowledge: list[KnowledgeItem],
        target_session_id: str,
        merge_strategy: str = "selective",
        *,
        on_candidates: Callable[[list[KnowledgeItem]], list[KnowledgeItem]] | None = None,
        sync: bool = True,
    ) -> TransferResult:
        """Write ``knowledge`` into ``target_session_id`` (see the module doc)."""
        if merge_strategy not in MERGE_STRATEGIES:
            raise ConfigError(
                f"invalid merge_strategy {merge_strategy!r}: expected one of "
                + ", ".join(MERGE_STRATEGIES)
            )
        if merge_strategy == "manual":
            if on_candidates is None:
                raise ConfigError("merge_strategy='manual' needs on_candidates=callback")
            chosen = list(on_candidates(list(knowledge)))
        elif merge_strategy == "selective":
            chosen = [k for k in knowledge if k.confidence > SELECTIVE_THRESHOLD]
        else:
            chosen = list(knowledge)
        sources = sorted({k.source for k in knowledge}) or [""]
        result = TransferResult(", ".join(sources), target_session_id, merge_strategy)
        chosen_ids = {id(k) for k in chosen}
        result.skipped = [_target_key(k) for k in knowledge if id(k) not in chosen_ids]
        mgr = self.manager
        for item in chosen:
            key = _target_key(item)
            existing = mgr.get(target_session_id, key)
            incoming = item.to_dict()
            if isinstance(existing, dict) and existing.get("value") != item.value:
                conflict = {
                    "key": key,
                    "target_value": existing.get("value"),
                    "target_confidence": existing.get("confidence"),
                    "incoming_value": item.value,
                    "incoming_confidence": item.confidence,
                }
                replace = merge_strategy == "full" or item.confidence > float(
                    existing.get("confidence") or 0.0
                )
                conflict["kept"] = "incoming" if replace else "target"
                result.conflicts.append(conflict)
                if not replace:
                    result.skipped.append(key)
                    continue
            mgr.set(target_session_id, key, incoming)
            result.transferred.append(key)
        history = mgr.get(target_session_id, HISTORY_KEY) or []
        mgr.set(target_session_id, HISTORY_KEY, [*history, result.to_dict()])
        if sync:
            mgr.sync(target_session_id)
        return result

    def history(self, target_session_id: str) -> list[dict[str, Any]]:
        """Every transfer into ``target_session_id``, oldest first."""
        return list(self.manager.get(target_session_id, HISTORY_KEY) or [])


def _target_key(item: KnowledgeItem) -> str:
    return f"{KNOWLEDGE_PREFIX}{item.kind}/{item.key}"
