"""``ContextMemory``: a managed context window that stays inside its token budget.

It is made of the profiler's own parts: a :class:`ContextSession` (same items, layers
and exact token counter), so ``memory.profile()``, ``diagnose`` and the
:class:`~memlens.context.monitor.ContextMonitor` work on it as on any window. On top
it keeps each item's text, priority, ``pinned`` flag and group, and can:

* ``compress()`` — move items down the four levels by age and priority;
* ``fit(budget)`` — compress, summarise hierarchically and evict until it fits
  (``dry_run=True`` previews the plan);
* ``handle_overflow()`` — over 90 % of the budget, fit down to 80 %;
* ``expand(item_id)`` — bring back the originals of any summary or evicted item
  from the lossless archive;
* ``cleanup()``, ``tick()`` — the lifecycle: compress at 80 %, expire cache entries
  past their TTL, archive a memory inactive for 24 h.

Every action is reported as a :class:`MemoryEvent` to subscribers.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from memlens.context.budget import parse_budget
from memlens.context.layers import DEFAULT_PRIORITY, Layer
from memlens.context.memory.archive import Archive, ArchivedItem, InMemoryArchive
from memlens.context.memory.entries import (
    EVICTED,
    LEVEL_NAMES,
    SUMMARY,
    VERBATIM,
    MemoryEntry,
    Priority,
)
from memlens.context.memory.levels import LevelRules
from memlens.context.memory.plan import Plan, Planner, build_units
from memlens.context.memory.summarize import ExtractiveSummarizer, Summarizer
from memlens.context.models import DEFAULT_CONTEXT_WINDOW, find_model
from memlens.context.session import ContextSession
from memlens.core.clock import SYSTEM_CLOCK, Clock
from memlens.core.errors import ConfigError, MemlensError, NotFoundError

if TYPE_CHECKING:
    from memlens.context.profile import ContextProfile

#: Overflow handling starts above this share of the budget and fits down to ``TARGET``.
OVERFLOW_AT = 0.90
OVERFLOW_TARGET = 0.80
#: An aggressive cleanup (token budget critical) fits down to this share.
AGGRESSIVE_TARGET = 0.60
#: The lifecycle compresses automatically at this utilization.
COMPRESS_AT = 0.80
#: A memory with no activity for this long is archived by the lifecycle.
INACTIVE_AFTER = timedelta(hours=24)

#: A cache entry untouched this long turns warm, then cold.
HOT_FOR = timedelta(hours=1)
WARM_FOR = timedelta(hours=24)
_TIERS = ("hot", "warm", "cold")

_PROTECTED_LAYERS = (Layer.SYSTEM_PROMPT, Layer.TOOL_DEFINITIONS)


class BudgetError(MemlensError):
    """A fit cannot reach its budget without touching what must be kept."""


@dataclass
class MemoryEvent:
    """One action the manager took (or scheduled), for logs and the monitor."""

    action: str
    reason: str
    tokens_before: int
    tokens_after: int
    timestamp: datetime
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "reason": self.reason,
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "timestamp": self.timestamp.isoformat().replace("+00:00", "Z"),
            "details": self.details,
        }


@dataclass
class FitReport:
    """What a fit did (or would do, for a dry run)."""

    budget: int
    before: int
    after: int
    actions: list[str]
    kept: list[str]
    summarized: list[str]
    grouped: list[str]
    evicted: list[str]
    summaries: list[str]
    pressure: float
    dry_run: bool
    per_level: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def tokens_saved(self) -> int:
        return self.before - self.after

    @property
    def fits(self) -> bool:
        return self.after <= self.budget

    @property
    def compression_ratio(self) -> float:
        """Tokens after / before (1.0 when nothing was done)."""
        return self.after / self.before if self.before else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "before": self.before,
            "after": self.after,
            "tokens_saved": self.tokens_saved,
            "compression_ratio": round(self.compression_ratio, 4),
            "fits": self.fits,
            "actions": self.actions,
            "kept": len(self.kept),
            "summarized": self.summarized,
            "grouped": self.grouped,
            "evicted": self.evicted,
            "summaries": self.summaries,
            "per_level": self.per_level,
            "pressure": round(self.pressure, 4),
            "dry_run": self.dry_run,
            "notes": self.notes,
        }


@dataclass
class CacheSlot:
    key: str
    entry_id: str
    expires: float | None


class ContextMemory:
    """A managed context window: items with priority, pins and groups, kept in budget.

    ``budget`` is a token count (``"200k"`` works) or, by default, the model's window.
    ``archive`` receives every original a summary or eviction replaces (an
    :class:`InMemoryArchive` unless given a :class:`SQLiteArchive`). ``keep_last_turns``
    turns are never touched. ``id_prefix`` goes into every generated id
    (``conversation:<prefix>1``), so memories that share items never pick the same id.
    """

    def __init__(
        self,
        budget: int | str | None = None,
        *,
        model: str | None = None,
        archive: Archive | None = None,
        summarizer: Summarizer | None = None,
        rules: LevelRules | None = None,
        keep_last_turns: int = 3,
        clock: Clock | None = None,
        session: ContextSession | None = None,
        message_overhead: int = 3,
        id_prefix: str = "",
    ) -> None:
        self.session = session or ContextSession(model, keep_content=True, name="memory")
        self.session.keep_content = True
        self.model = model or self.session.model
        tokens = parse_budget(budget)
        if tokens is None:
            info = find_model(self.model) if self.model else None
            tokens = info.context_window if info else DEFAULT_CONTEXT_WINDOW
        self.budget = tokens
        if keep_last_turns < 0:
            raise ConfigError(f"invalid keep_last_turns={keep_last_turns}: must be >= 0")
        self.keep_last_turns = keep_last_turns
        self.archive: Archive = archive if archive is not None else InMemoryArchive()
        self.summarizer: Summarizer = summarizer or ExtractiveSummarizer()
        if getattr(self.summarizer, "on_fallback", False) is None:
            # an LLM summarizer that falls back tells this memory's subscribers
            self.summarizer.on_fallback = self._fallback  # type: ignore[attr-defined]
        self.rules = rules or LevelRules()
        self.clock = clock or SYSTEM_CLOCK
        self.message_overhead = message_overhead
        self.entries: dict[str, MemoryEntry] = {}
        self.summary_of: dict[str, list[str]] = {}
        self.replaced_by: dict[str, str | None] = {}
        self.events: collections.deque[MemoryEvent] = collections.deque(maxlen=10_000)
        self.scheduled: list[tuple[str, str, dict[str, Any]]] = []
        self.cleanup_count = 0
        self._listeners: list[Callable[[MemoryEvent], None]] = []
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self.id_prefix = id_prefix
        self._cache: dict[str, CacheSlot] = {}
        self._turn = 0
        self.last_activity = self.now()

    # ------------------------------------------------------------------ time, events
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.wall(), timezone.utc)

    def subscribe(self, listener: Callable[[MemoryEvent], None]) -> None:
        """Call ``listener`` with every event from now on."""
        self._listeners.append(listener)

    def emit(self, action: str, reason: str, before: int, **details: Any) -> MemoryEvent:
        event = MemoryEvent(action, reason, before, self.tokens, self.now(), details)
        self.events.append(event)
        for listener in list(self._listeners):
            listener(event)
        return event

    def _fallback(self, reason: str) -> None:
        self.emit("summarizer_fallback", reason, self.tokens)

    # ------------------------------------------------------------------ size
    @property
    def tokens(self) -> int:
        """Tokens the managed window holds now."""
        return sum(e.tokens for e in self.entries.values())

    @property
    def utilization(self) -> float:
        return self.tokens / self.budget if self.budget else 0.0

    @property
    def pinned_tokens(self) -> int:
        return sum(e.tokens for e in self.entries.values() if self._is_protected(e))

    def _is_protected(self, entry: MemoryEntry) -> bool:
        return entry.pinned or entry.layer in _PROTECTED_LAYERS

    # ------------------------------------------------------------------ adding
    def add(
        self,
        content: Any,
        *,
        layer: Layer | str = Layer.CONVERSATION,
        sublayer: str = "",
        role: str = "",
        kind: str = "text",
        priority: Priority | str = Priority.NORMAL,
        pinned: bool = False,
        group: str = "",
        created: datetime | None = None,
        id: str | None = None,
        overhead: int | None = None,
        payload: dict[str, Any] | None = None,
        new_turn: bool | None = None,
    ) -> MemoryEntry:
        """Add an item; a ``user`` message with text starts a new turn."""
        layer = Layer.parse(layer)
        if not isinstance(content, str):
            raise ConfigError(f"memory items hold text, not {type(content).__name__}")
        if new_turn or (new_turn is None and role == "user" and kind == "text"):
            self._turn += 1
            self.session.new_turn(created, label=content[:80])
        entry_id = id or f"{layer.value}:{self.id_prefix}{next(self._ids)}"
        if entry_id in self.entries or entry_id in self.replaced_by:
            raise ConfigError(f"duplicate memory item id {entry_id!r}")
        extra = self.message_overhead if overhead is None else overhead
        now = self.now()
        when = created or now
        prio = Priority.parse(priority)
        item = self.session.add(
            layer,
            content,
            id=entry_id,
            sublayer=sublayer,
            kind=kind,
            priority=prio.score if layer is not Layer.SYSTEM_PROMPT else DEFAULT_PRIORITY[layer],
            created=when,
            overhead=extra,
        )
        entry = MemoryEntry(
            id=entry_id,
            layer=layer,
            content=content,
            tokens=item.tokens,
            original_tokens=item.tokens,
            sublayer=item.sublayer,
            role=role,
            kind=kind,
            priority=prio,
            pinned=pinned,
            created=created,
            last_accessed=created,
            group=group or entry_id,
            turn=self._turn,
            seq=next(self._seq),
            overhead=extra,
            payload=dict(payload or {}),
        )
        self.entries[entry_id] = entry
        self.last_activity = now
        return entry

    def add_counted(
        self,
        content: str,
        tokens: int,
        *,
        id: str,
        layer: Layer,
        role: str,
        kind: str,
        priority: Priority,
        pinned: bool,
        group: str,
        overhead: int,
        payload: dict[str, Any],
        new_turn: bool,
    ) -> MemoryEntry:
        """:meth:`add` of an item whose size a reader already gave: ``tokens`` in all,
        framing included (``overhead`` of them, at most, being framing). The entry
        and its profiler item are those :meth:`add` makes, with ``tokens`` in place of
        the memory's own count: a message list read by the profiler becomes a memory
        without counting or parsing each item again. ``payload`` is kept, not copied."""
        if new_turn:
            self._turn += 1
            self.session.new_turn(None, label=content[:80])
        if id in self.entries or id in self.replaced_by:
            raise ConfigError(f"duplicate memory item id {id!r}")
        counted, digest = self.session.counter.count_digest(content) if content else (0, b"")
        if tokens != counted + overhead:  # the reader's framing: what its count adds
            overhead = max(0, tokens - counted)
        now = self.now()
        self.session.add_counted(
            layer,
            content,
            tokens,
            digest,
            id=id,
            kind=kind,
            priority=priority.score
            if layer is not Layer.SYSTEM_PROMPT
            else DEFAULT_PRIORITY[layer],
            created=now,
        )
        entry = MemoryEntry(
            id,
            layer,
            content,
            tokens,
            tokens,
            "",
            role,
            kind,
            priority,
            pinned,
            None,
            None,
            group or id,
            self._turn,
            VERBATIM,
            next(self._seq),
            overhead,
            False,
            [],
            payload,
        )
        self.entries[id] = entry
        self.last_activity = now
        return entry

    def add_system(self, text: str, **kw: Any) -> MemoryEntry:
        """The system prompt: never summarised, never evicted."""
        kw.setdefault("role", "system")
        return self.add(text, layer=Layer.SYSTEM_PROMPT, kind="system", **kw)

    def add_message(self, role: str, text: str, **kw: Any) -> MemoryEntry:
        """A conversation message (``user`` starts a turn)."""
        return self.add(text, layer=Layer.CONVERSATION, role=role, **kw)

    def add_tool_call(self, call_id: str, name: str, arguments: str, **kw: Any) -> MemoryEntry:
        """An assistant's tool call; its result joins its group."""
        kw.setdefault("group", f"call:{call_id}")
        payload = {"call_id": call_id, "name": name, **kw.pop("payload", {})}
        return self.add(
            arguments, role="assistant", kind="tool_call", payload=payload, new_turn=False, **kw
        )

    def add_tool_result(
        self, call_id: str, text: str, *, is_error: bool = False, **kw: Any
    ) -> MemoryEntry:
        """A tool's result, grouped with its call (never separated from it)."""
        call = next((e for e in self.entries.values() if e.payload.get("call_id") == call_id), None)
        kw.setdefault("group", call.group if call else f"call:{call_id}")
        layer = Layer.WORKING_MEMORY if is_error else kw.pop("layer", Layer.CONVERSATION)
        if is_error:
            kw.setdefault("sublayer", "debug_info")
        payload = {"call_id": call_id, "is_error": is_error, **kw.pop("payload", {})}
        return self.add(
            text,
            layer=layer,
            role="tool",
            kind="tool_result",
            payload=payload,
            new_turn=False,
            **kw,
        )

    def add_file(self, path: str, text: str, **kw: Any) -> MemoryEntry:
        """A file in working memory."""
        kw.setdefault("payload", {"path": path})
        return self.add(text, layer=Layer.WORKING_MEMORY, sublayer="files", kind="file", **kw)

    def add_task(self, text: str, **kw: Any) -> MemoryEntry:
        """A task in working memory (high priority by default)."""
        kw.setdefault("priority", Priority.HIGH)
        return self.add(text, layer=Layer.WORKING_MEMORY, sublayer="tasks", **kw)

    def add_debug(self, text: str, **kw: Any) -> MemoryEntry:
        """Debug output in working memory (trimmed like tool output)."""
        return self.add(
            text, layer=Layer.WORKING_MEMORY, sublayer="debug_info", kind="debug_info", **kw
        )

    def add_agent_state(self, agent: str, text: str, **kw: Any) -> MemoryEntry:
        """A sub-agent's state."""
        return self.add(text, layer=Layer.AGENT_STATES, sublayer=agent, **kw)

    # ------------------------------------------------------------------ cache
    def cache_put(
        self, key: str, text: str, *, tier: str = "hot", ttl: float | None = None, **kw: Any
    ) -> MemoryEntry:
        """Cache ``text`` under ``key`` in the hot/warm/cold tier, for ``ttl`` seconds."""
        old = self._cache.pop(key, None)
        if old is not None and old.entry_id in self.entries:
            self._drop(old.entry_id, archive=True, reason="replaced in cache")
        kw.setdefault("created", self.now())  # cache tiers move by recency
        entry = self.add(text, layer=Layer.CACHE, sublayer=tier, kind="cache", **kw)
        expires = self.clock.wall() + ttl if ttl is not None else None
        self._cache[key] = CacheSlot(key, entry.id, expires)
        if ttl is not None:
            self.session.record_cache(ttl_seconds=ttl)
        return entry

    def cache_get(self, key: str) -> str | None:
        """The cached text (a hit) or ``None`` (a miss: unknown or expired)."""
        slot = self._cache.get(key)
        if slot is not None and slot.expires is not None and self.clock.wall() >= slot.expires:
            self._expire(slot)
            slot = None
        entry = self.entries.get(slot.entry_id) if slot else None
        if entry is None:
            self.session.record_cache(misses=1)
            return None
        self.session.record_cache(hits=1)
        self.touch(entry.id)
        self._move_tier(entry, "hot")
        return entry.content

    def _move_tier(self, entry: MemoryEntry, tier: str) -> None:
        if entry.sublayer != tier:
            entry.sublayer = tier
            self.session.items[entry.id].sublayer = tier

    def retier_cache(self) -> int:
        """Move cache entries by recency: a hit makes an entry hot; untouched for an hour
        it turns warm, for a day cold. Returns how many moved."""
        now = self.now()
        moved = 0
        for slot in self._cache.values():
            entry = self.entries.get(slot.entry_id)
            if entry is None:
                continue
            idle = now - (entry.last_accessed or entry.created or now)
            tier = "cold" if idle >= WARM_FOR else "warm" if idle >= HOT_FOR else entry.sublayer
            if tier != entry.sublayer and _TIERS.index(tier) > _TIERS.index(entry.sublayer):
                self._move_tier(entry, tier)
                moved += 1
        return moved

    def _expire(self, slot: CacheSlot) -> None:
        self._cache.pop(slot.key, None)
        if slot.entry_id in self.entries:
            self._drop(slot.entry_id, archive=True, reason="cache TTL expired")
        self.session.record_cache(evictions=1)

    def expire_cache(self) -> int:
        """Drop (archive) every cache entry past its TTL; returns how many."""
        now = self.clock.wall()
        due = [s for s in self._cache.values() if s.expires is not None and now >= s.expires]
        before = self.tokens
        for slot in due:
            self._expire(slot)
        if due:
            self.emit("cache_expire", "TTL expired", before, count=len(due))
        return len(due)

    def touch(self, item_id: str) -> None:
        """Record an access (warms the item: it is compressed later)."""
        entry = self.entries[item_id]
        entry.last_accessed = self.now()
        self.session.touch(item_id, entry.last_accessed)
        self.last_activity = entry.last_accessed

    # ------------------------------------------------------------------ planning
    def planner(self) -> Planner:
        """A planner over the current items (reusable for several budgets)."""
        return self._units_planner()

    def _units_planner(self) -> Planner:
        ordered = sorted(self.entries.values(), key=lambda e: e.seq)
        units = build_units(
            ordered,
            keep_last_turns=self.keep_last_turns,
            rules=self.rules,
            now=self.now(),
            is_protected=self._is_protected,
        )
        return Planner(
            units,
            rules=self.rules,
            summarizer=self.summarizer,
            count=self.session.counter.count,
            summary_overhead=self.message_overhead,
            count_concat=self.session.counter.count_concat,
        )

    def plan(self, budget: int | str | None = None) -> Plan:
        """The plan that would fit ``budget`` (default: this memory's), without applying it."""
        target = parse_budget(budget) if budget is not None else self.budget
        assert target is not None
        return self._units_planner().solve(target)

    def fit(
        self, budget: int | str | None = None, *, dry_run: bool = False, reason: str = "fit"
    ) -> FitReport:
        """Compress, summarise and evict until the memory fits ``budget``.

        Raises :class:`BudgetError` (and changes nothing) when the protected items
        (pinned, system prompt, tool definitions, last turns) alone exceed it.
        """
        plan = self.plan(budget)
        if dry_run:
            return self.report_of(plan, dry_run=True)
        return self.carry_out(plan, reason=reason)

    def report_of(self, plan: Plan, *, dry_run: bool = False) -> FitReport:
        """What ``plan`` would do (:class:`BudgetError` if it does not fit)."""
        if not plan.fits:
            raise BudgetError(self._why_not(plan))
        return self._report(plan, dry_run)

    def carry_out(self, plan: Plan, *, reason: str = "fit") -> FitReport:
        """Apply a plan from :meth:`plan` (or a :meth:`planner`) and emit its event."""
        report = self.report_of(plan)
        if plan.changed:
            before = self.tokens
            self.apply(plan)
            report.after = self.tokens
            self.emit(
                "fit",
                reason,
                before,
                actions=report.actions,
                evicted=len(report.evicted),
                summaries=len(report.summaries),
                tokens_saved=before - self.tokens,
            )
        return report

    def _why_not(self, plan: Plan) -> str:
        pinned = sum(e.tokens for e in self.entries.values() if self._is_protected(e))
        recent = plan.protected_tokens - pinned
        return (
            f"cannot fit {plan.before:,} tokens into {plan.budget:,}: what cannot be removed "
            f"needs {plan.after:,} (pinned items and system prompt {pinned:,}, the last "
            f"{self.keep_last_turns} turns {recent:,}, summaries and notes "
            f"{plan.after - plan.protected_tokens:,}); raise the budget, unpin items or keep "
            "fewer turns"
        )

    def _report(self, plan: Plan, dry_run: bool) -> FitReport:
        by_level: dict[int, list[str]] = collections.defaultdict(list)
        for entry_id, level in plan.levels.items():
            by_level[level].append(entry_id)
        actions = []
        if by_level.get(SUMMARY):
            actions.append("compress")
        if any(s.covers for s in plan.summaries):
            actions.append("summarize")
        if plan.evicted:
            actions.append("evict")
        per_level: dict[str, dict[str, float]] = {}
        for level in (SUMMARY, 3, 4):
            ids = by_level.get(level, [])
            if not ids:
                continue
            original = sum(self.entries[i].tokens for i in ids)
            if level == SUMMARY:
                now = sum(plan.rewritten[i][1] for i in ids)
            else:
                now = sum(s.tokens for s in plan.summaries if s.level == level and s.covers)
            per_level[LEVEL_NAMES[level]] = {
                "items": len(ids),
                "original_tokens": original,
                "tokens": now,
                "ratio": round(now / original, 4) if original else 1.0,
                "target": self.rules.ratio(level),
            }
        changed = set(plan.levels)
        return FitReport(
            budget=plan.budget,
            before=plan.before,
            after=plan.after,
            actions=actions,
            kept=[i for i in self.entries if i not in changed],
            summarized=by_level.get(SUMMARY, []),
            grouped=by_level.get(3, []) + by_level.get(4, []),
            evicted=list(plan.evicted),
            summaries=[s.id for s in plan.summaries],
            pressure=plan.pressure,
            dry_run=dry_run,
            per_level=per_level,
            notes=list(plan.notes),
        )

    def apply(self, plan: Plan) -> None:
        """Carry out a plan: archive originals first, then rewrite, group and evict."""
        for entry_id, (text, tokens) in plan.rewritten.items():
            entry = self.entries[entry_id]
            self._archive(entry)
            self.session.record_compression(entry.tokens, tokens)
            entry.content = text
            entry.tokens = tokens
            entry.level = SUMMARY
            entry.notes.append(f"summarised ({self.summarizer.name})")
            entry.notes.extend(plan.item_notes.get(entry_id, []))
            self.session.update(entry_id, tokens=tokens)
            self.session.items[entry_id].content = text
        for summary in plan.summaries:
            originals = 0
            for entry_id in summary.covers:
                originals += self.entries[entry_id].tokens
                self._drop(entry_id, archive=True, reason=f"level {summary.level}", by=summary.id)
            if summary.covers:
                self.session.record_compression(originals, summary.tokens)
            sid = summary.id
            while sid in self.entries or sid in self.replaced_by:
                sid = f"{summary.id}#{next(self._ids)}"
            item = self.session.add(
                Layer.LONG_TERM_MEMORY,
                summary.content,
                id=sid,
                sublayer="compressed",
                kind="summary",
                overhead=self.message_overhead,
            )
            self.entries[sid] = MemoryEntry(
                id=sid,
                layer=Layer.LONG_TERM_MEMORY,
                content=summary.content,
                tokens=item.tokens,
                original_tokens=item.tokens,
                sublayer="compressed",
                role="user",
                kind="summary",
                level=summary.level,
                seq=summary.anchor if summary.anchor >= 0 else 0,
                overhead=self.message_overhead,
                created=self.now(),
                group=sid,
                turn=0,
                payload={"covers": list(summary.covers), "kept": [k.text for k in summary.kept]},
            )
            self.summary_of[sid] = list(summary.covers)
            self.entries[sid].notes.extend(summary.notes)
        for entry_id in plan.evicted:
            if entry_id in self.entries:
                self._drop(entry_id, archive=True, reason="evicted")
        if plan.evicted:
            self.cleanup_count += 1
            self.session.record_cleanup(self.now())

    def _archive(self, entry: MemoryEntry) -> None:
        if entry.id in self.archive:
            return
        meta = entry.to_dict()
        meta["payload"] = _without_content(entry.payload, entry.content)
        # the in-memory archive checksums a text when first read, not now (a fit
        # archives thousands of originals and reads back few)
        put_deferred = getattr(self.archive, "put_deferred", None)
        if put_deferred is not None:
            put_deferred(entry.id, entry.content, meta)
        else:
            self.archive.put(entry.id, entry.content, meta)
        entry.archived = True

    def _drop(self, entry_id: str, *, archive: bool, reason: str, by: str | None = None) -> None:
        entry = self.entries.pop(entry_id)
        if archive:
            self._archive(entry)
        entry.level = EVICTED if by is None else entry.level
        entry.notes.append(reason)
        self.replaced_by[entry_id] = by
        if entry_id in self.session.items:
            self.session.remove(entry_id)

    # ------------------------------------------------------------------ levels, overflow
    def compress(self) -> FitReport:
        """Apply the age/priority levels (no budget pressure): the lifecycle's compress."""
        planner = self._units_planner()
        plan = planner.build(0.0, self.budget)
        report = self._report(plan, False)
        if plan.changed:
            before = self.tokens
            self.apply(plan)
            report.after = self.tokens
            self.emit("compress", "age and priority levels", before, per_level=report.per_level)
        return report

    def handle_overflow(self) -> FitReport | None:
        """Above 90 % of the budget, fit down to 80 %; ``None`` when not needed."""
        if self.utilization <= OVERFLOW_AT:
            return None
        return self.fit(int(self.budget * OVERFLOW_TARGET), reason="overflow")

    def cleanup(self, *, aggressive: bool = False, reason: str = "cleanup") -> FitReport:
        """Expire the cache and compress; then fit to 80 % of the budget if still above
        it, or (``aggressive``) to 60 %."""
        self.expire_cache()
        report = self.compress()
        if aggressive:
            report = self.fit(int(self.budget * AGGRESSIVE_TARGET), reason=reason)
        elif self.utilization > COMPRESS_AT:
            report = self.fit(int(self.budget * OVERFLOW_TARGET), reason=reason)
        self.cleanup_count += 1
        self.session.record_cleanup(self.now())
        self.emit("aggressive_cleanup" if aggressive else "cleanup", reason, report.before)
        return report

    def cleanup_working_memory(self, target_tokens: int, *, reason: str = "cleanup") -> FitReport:
        """Summarise or evict working-memory items (files, tasks, debug output) down to
        ``target_tokens`` for that layer; other layers are untouched."""
        self.expire_cache()
        working = [e for e in self.ordered() if e.layer is Layer.WORKING_MEMORY]
        units = build_units(
            working,
            keep_last_turns=self.keep_last_turns,
            rules=self.rules,
            now=self.now(),
            is_protected=self._is_protected,
        )
        planner = Planner(
            units,
            rules=self.rules,
            summarizer=self.summarizer,
            count=self.session.counter.count,
            summary_overhead=self.message_overhead,
            count_concat=self.session.counter.count_concat,
        )
        plan = planner.solve(max(0, target_tokens))
        report = self._report(plan, False)
        before = self.tokens
        if plan.changed:
            self.apply(plan)
        self.cleanup_count += 1
        self.session.record_cleanup(self.now())
        self.emit(
            "cleanup_working_memory",
            reason,
            before,
            target=target_tokens,
            working_tokens=sum(
                e.tokens for e in self.entries.values() if e.layer is Layer.WORKING_MEMORY
            ),
        )
        return report

    def schedule(self, action: str, reason: str, **options: Any) -> None:
        """Ask for an action at the next :meth:`tick` (warning alerts do this)."""
        if all(a != action for a, _, _ in self.scheduled):
            self.scheduled.append((action, reason, options))
            self.emit("scheduled", f"{action}: {reason}", self.tokens, action_scheduled=action)

    def tick(self) -> list[MemoryEvent]:
        """One step of the lifecycle; returns the events it produced."""
        start = len(self.events)
        due, self.scheduled = self.scheduled, []
        for action, reason, options in due:
            self.run(action, reason, **options)
        self.expire_cache()
        if self.retier_cache():
            self.emit("cache_retier", "hot/warm/cold by recency", self.tokens)
        if self.now() - self.last_activity >= INACTIVE_AFTER:
            self.archive_inactive()
        elif self.utilization >= COMPRESS_AT:
            self.compress()
            self.handle_overflow()
        return list(self.events)[start:]

    def run(self, action: str, reason: str, **options: Any) -> None:
        """Run a named action: ``cleanup``, ``aggressive_cleanup``, ``compress``, ``fit``,
        ``cleanup_working_memory`` (needs ``target_tokens``)."""
        if action == "cleanup_working_memory":
            self.cleanup_working_memory(int(options["target_tokens"]), reason=reason)
        elif action == "cleanup":
            self.cleanup(reason=reason)
        elif action == "aggressive_cleanup":
            self.cleanup(aggressive=True, reason=reason)
        elif action == "compress":
            self.compress()
        elif action == "fit":
            self.fit(reason=reason)
        else:
            raise ConfigError(f"unknown memory action {action!r}")

    def archive_inactive(self) -> int:
        """Archive every item that is not pinned (the memory was idle for 24 h)."""
        before = self.tokens
        ids = [e.id for e in self.entries.values() if not self._is_protected(e)]
        for entry_id in ids:
            self._drop(entry_id, archive=True, reason="session inactive")
        self.emit("archive_session", "inactive for 24 h", before, items=len(ids))
        self.last_activity = self.now()
        return len(ids)

    # ------------------------------------------------------------------ replication
    # Hooks for a memory shared between workers (memlens.context.shared.memory): take
    # in an entry exactly as another worker wrote it (no recount, no new turn), or
    # retire one that another worker summarised or evicted (it archived the original).
    def install(self, entry: MemoryEntry, *, cache: CacheSlot | None = None) -> None:
        """Put ``entry`` into the window as it is, replacing a live entry with its id
        (``cache``: the cache key that points at it)."""
        if entry.id in self.entries and entry.id in self.session.items:
            self.session.remove(entry.id)
        self.replaced_by.pop(entry.id, None)
        self.entries[entry.id] = entry
        score = DEFAULT_PRIORITY[entry.layer]
        if entry.layer is not Layer.SYSTEM_PROMPT:
            score = entry.priority.score
        self.session.add(
            entry.layer,
            entry.content,
            tokens=entry.tokens,
            id=entry.id,
            sublayer=entry.sublayer,
            kind=entry.kind,
            priority=score,
            created=entry.created,
            last_accessed=entry.last_accessed,
        )
        if entry.kind == "summary":
            self.summary_of[entry.id] = list(entry.payload.get("covers", []))
        # Later local items go after it, and count turns on from it.
        self._seq = itertools.count(max(next(self._seq), entry.seq + 1))
        self._turn = max(self._turn, entry.turn)
        self._claim(entry.id)
        if cache is not None:
            self._cache[cache.key] = cache

    def retire(
        self, entry_id: str, *, by: str | None = None, archive: bool = False, reason: str = ""
    ) -> None:
        """Take ``entry_id`` out of the window (``by``: the summary that replaced it)."""
        for key in [k for k, slot in self._cache.items() if slot.entry_id == entry_id]:
            del self._cache[key]
        if entry_id in self.entries:
            self._drop(entry_id, archive=archive, reason=reason or "retired elsewhere", by=by)
        else:
            self.replaced_by[entry_id] = by
        self._claim(entry_id)

    def _claim(self, entry_id: str) -> None:
        # An id this memory's prefix generated (before a restart): never generate it again.
        _, _, tail = entry_id.partition(":")
        number = tail[len(self.id_prefix) :] if tail.startswith(self.id_prefix) else ""
        if number.isdigit():
            self._ids = itertools.count(max(next(self._ids), int(number) + 1))

    def cache_slots(self) -> dict[str, CacheSlot]:
        """The cache's keys and the entries they point at (a copy)."""
        return dict(self._cache)

    # ------------------------------------------------------------------ recovery, views
    def expand(self, item_id: str) -> list[ArchivedItem]:
        """The originals behind ``item_id``: itself if archived, or every item a summary covers."""
        if item_id in self.summary_of:
            found: list[ArchivedItem] = []
            for covered in self.summary_of[item_id]:
                found.extend(self.expand(covered))
            return found
        if item_id in self.archive:
            item = self.archive.get(item_id)
            _restore_content(item.meta.get("payload"), item.content)
            return [item]
        if item_id in self.entries:
            entry = self.entries[item_id]
            return [ArchivedItem(item_id, entry.content, entry.to_dict(), "")]
        raise NotFoundError(f"no memory item {item_id!r} (neither live nor archived)")

    def ordered(self) -> list[MemoryEntry]:
        """Live entries in window order (summaries where their first original was)."""
        return sorted(self.entries.values(), key=lambda e: (e.seq, e.kind != "summary"))

    def profile(self, **kw: Any) -> ContextProfile:
        """The profiler's profile of the managed window, against this memory's budget."""
        return self.session.profile(budget=kw.pop("budget", self.budget), **kw)

    def levels(self) -> dict[str, int]:
        """How many live items sit at each level."""
        counts: collections.Counter[str] = collections.Counter(
            LEVEL_NAMES[e.level] for e in self.entries.values()
        )
        return dict(counts)

    @classmethod
    def from_entries(cls, entries: Iterable[MemoryEntry], **kw: Any) -> ContextMemory:
        """A memory holding copies of ``entries`` (for tests and adapters)."""
        memory = cls(**kw)
        for e in entries:
            memory.add(
                e.content,
                layer=e.layer,
                sublayer=e.sublayer,
                role=e.role,
                kind=e.kind,
                priority=e.priority,
                pinned=e.pinned,
                group=e.group,
                created=e.created,
                id=e.id,
                payload=e.payload,
            )
        return memory


__all__ = ["VERBATIM", "BudgetError", "ContextMemory", "FitReport", "MemoryEvent"]


#: Stands in an archived message's ``raw`` copy for the text archived beside it.
_SAME_TEXT = "[memlens: the archived text]"


def _without_content(payload: dict[str, Any], content: str) -> dict[str, Any]:
    """The payload with its raw message's text (the archived content itself) left out:
    a long tool output is then compressed and checksummed once, not also written out
    as JSON in the metadata. :func:`_restore_content` puts it back."""
    raw = payload.get("raw")
    if not isinstance(raw, dict) or not content:
        return payload
    for key in ("content", "text"):
        if raw.get(key) == content:
            return {**payload, "raw": {**raw, key: _SAME_TEXT}, "raw_text": key}
    return payload


def _restore_content(payload: Any, content: str) -> None:
    if not isinstance(payload, dict) or "raw_text" not in payload:
        return
    raw = payload.get("raw")
    key = payload.pop("raw_text")
    if isinstance(raw, dict) and raw.get(key) == _SAME_TEXT:
        raw[key] = content
