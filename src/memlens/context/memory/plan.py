"""Planning a fit: which groups stay verbatim, which are summarised, which are evicted.

The planner works on *units* (groups: a tool call with its results, or one item).
Protected units (pinned, the system prompt and tool definitions, the last N turns)
are never touched. The others are ordered coldest first (lowest priority, then
oldest) and one knob, the *pressure* ``t`` in 0..4, moves them down the levels: the
coldest ``t`` share to level 2, the coldest ``t - 1`` to level 3, ``t - 2`` to level 4
and ``t - 3`` out (evicted, archived). Each unit's level is also at least the one
its age and priority give it (:class:`~.levels.LevelRules`); critical units are
never summarised, only evicted, and last. Sizes are planned from each level's target
(summarizers never exceed their target), the smallest pressure that fits is found by
bisection, then the summaries are written and counted exactly; if the exact count
is still over, the pressure goes up and only the changed summaries are redone.
The same input always gives the same plan: nothing here depends on dict order of
unordered data, randomness or the wall clock (``now`` is passed in).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from memlens.context.memory.entries import (
    COLD,
    EVICTED,
    GROUPED,
    SUMMARY,
    VERBATIM,
    MemoryEntry,
    Priority,
)
from memlens.context.memory.keepset import Keep
from memlens.context.memory.levels import LevelRules
from memlens.context.memory.summarize import Count, Summarizer

#: Kinds never rewritten alone: calls keep valid arguments, opaque blocks (images,
#: documents) have no text to summarise.
_NOT_REWRITTEN = frozenset({"tool_call", "opaque", "system", "tool_definition"})

#: Tokens a summary's reference header costs at most ("[memlens summary of …]").
HEADER_TOKENS = 24


@dataclass
class Unit:
    """A group of entries kept, compressed or evicted together."""

    key: str
    entries: list[MemoryEntry]
    protected: bool
    rule_level: int
    current_level: int
    critical: bool
    coldness: tuple[int, float, int]
    category: str
    turn: int

    @property
    def tokens(self) -> int:
        return sum(e.tokens for e in self.entries)


@dataclass
class PlannedSummary:
    """A summary the plan adds, covering whole units."""

    id: str
    level: int
    content: str
    tokens: int
    covers: list[str]
    anchor: int
    kept: list[Keep] = field(default_factory=list)
    dropped: list[Keep] = field(default_factory=list)
    method: str = "extractive"
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """What a fit would do; :meth:`ContextMemory.apply` carries it out."""

    budget: int
    before: int
    after: int
    pressure: float
    levels: dict[str, int] = field(default_factory=dict)
    rewritten: dict[str, tuple[str, int]] = field(default_factory=dict)
    summaries: list[PlannedSummary] = field(default_factory=list)
    evicted: list[str] = field(default_factory=list)
    protected_tokens: int = 0
    notes: list[str] = field(default_factory=list)
    #: notes a summarizer left on rewritten items (an LLM call that fell back)
    item_notes: dict[str, list[str]] = field(default_factory=dict)
    #: level -> (tokens written, tokens its targets allowed), for calibration
    measured: dict[int, tuple[int, int]] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return self.after <= self.budget

    @property
    def changed(self) -> bool:
        return bool(self.rewritten or self.summaries or self.evicted)


def build_units(
    entries: Sequence[MemoryEntry],
    *,
    keep_last_turns: int,
    rules: LevelRules,
    now: datetime,
    is_protected: Callable[[MemoryEntry], bool],
) -> list[Unit]:
    """Group entries into units, in first-entry order."""
    by_key: dict[str, list[MemoryEntry]] = {}
    for entry in entries:
        by_key.setdefault(entry.group or entry.id, []).append(entry)
    last_turn = max((e.turn for e in entries), default=0)
    first_kept_turn = last_turn - keep_last_turns + 1 if keep_last_turns > 0 else last_turn + 1
    units = []
    for key, members in by_key.items():
        turn = min(e.turn for e in members)
        recent = keep_last_turns > 0 and turn >= first_kept_turn and turn > 0
        protected = recent or any(is_protected(e) for e in members)
        rank = max(e.priority.rank for e in members)
        stamps = [e.last_accessed or e.created for e in members]
        when = max((w.timestamp() for w in stamps if w is not None), default=0.0)
        tool = next((str(e.payload.get("name", "")) for e in members if e.kind == "tool_call"), "")
        category = f"tool:{tool}" if tool else (members[0].role or members[0].layer.value)
        units.append(
            Unit(
                key=key,
                entries=members,
                protected=protected,
                rule_level=max(rules.level_for(e, now) for e in members),
                current_level=max(e.level for e in members),
                critical=any(e.priority is Priority.CRITICAL for e in members),
                coldness=(rank, when, min(e.seq for e in members)),
                category=category,
                turn=turn,
            )
        )
    return units


class Planner:
    """Finds the least pressure that fits a budget and writes the summaries for it."""

    def __init__(
        self,
        units: list[Unit],
        *,
        rules: LevelRules,
        summarizer: Summarizer,
        count: Count,
        summary_overhead: int = 3,
        count_concat: Callable[[str, str, str], int] | None = None,
    ) -> None:
        self.units = units
        self.rules = rules
        self.summarizer = summarizer
        self.count = count
        #: exact count of a header + a body the summarizer has counted already (the
        #: third argument is the two joined: the text the plan will hold)
        self.count_concat = count_concat or (lambda head, tail, joined: count(joined))
        self.summary_overhead = summary_overhead
        self.movable = sorted((u for u in units if not u.protected), key=lambda u: u.coldness)
        self.protected_tokens = sum(u.tokens for u in units if u.protected)
        self.total = sum(u.tokens for u in units)
        self._l2: dict[str, tuple[str, int]] = {}
        self._notes: dict[str, list[str]] = {}
        #: measured size / planned size of each level's summaries so far
        self.scale = {SUMMARY: 1.0, GROUPED: 1.0, COLD: 1.0}
        self._groups: dict[tuple[str, ...], PlannedSummary] = {}
        # per movable unit, computed once: the estimate runs some 30 times per fit
        self._tokens = [u.tokens for u in self.movable]
        self._critical = [u.critical for u in self.movable]
        self._floor = [
            u.current_level if u.critical else max(u.rule_level, u.current_level)
            for u in self.movable
        ]
        self._cluster = [(u.category, u.turn // max(1, rules.group_turns)) for u in self.movable]
        self._l2_by_scale: dict[float, list[int]] = {}
        self._sizes: dict[tuple[float, ...], int] = {}
        self._r = [(i + 0.5) / len(self.movable) for i in range(len(self.movable))]

    # -------------------------------------------------------------- levels
    def _level_at(self, i: int, t: float) -> int:
        """Level of the ``i``-th coldest movable unit at pressure ``t``."""
        r = (i + 0.5) / len(self.movable)
        p = (
            EVICTED
            if r < t - 3
            else COLD
            if r < t - 2
            else GROUPED
            if r < t - 1
            else SUMMARY
            if r < t
            else VERBATIM
        )
        if self._critical[i]:
            return EVICTED if p == EVICTED else self._floor[i]
        return max(p, self._floor[i])

    def levels(self, t: float) -> dict[str, int]:
        """Level of each movable unit at pressure ``t``."""
        return {unit.key: self._level_at(i, t) for i, unit in enumerate(self.movable)}

    def _target(self, tokens: int, level: int) -> int:
        return max(self.rules.min_summary_tokens, math.ceil(tokens * self.rules.ratio(level)))

    def _l2_estimate(self, entry: MemoryEntry, scale: float = 1.0) -> int:
        if entry.level >= SUMMARY or not self._l2_worth(entry):
            return entry.tokens
        target = int(self._target(entry.tokens - entry.overhead, SUMMARY) * scale)
        return min(entry.tokens, target + entry.overhead)

    def _l2_worth(self, entry: MemoryEntry) -> bool:
        return (
            entry.kind not in _NOT_REWRITTEN and entry.tokens >= 2 * self.rules.min_summary_tokens
        )

    def clusters(self, levels: dict[str, int]) -> tuple[list[list[Unit]], list[Unit], list[Unit]]:
        """Level-3 clusters (kind x turn window), the level-4 units and the evicted ones."""
        grouped: dict[tuple[str, int], list[Unit]] = {}
        cold: list[Unit] = []
        evicted: list[Unit] = []
        for unit in self.units:
            level = levels.get(unit.key, VERBATIM)
            if level == GROUPED:
                window = unit.turn // max(1, self.rules.group_turns)
                grouped.setdefault((unit.category, window), []).append(unit)
            elif level == COLD:
                cold.append(unit)
            elif level == EVICTED:
                evicted.append(unit)
        return list(grouped.values()), cold, evicted

    def estimate(self, t: float) -> int:
        """Planned size at pressure ``t`` from each level's target, scaled by how full
        the summaries written so far came out (:attr:`scale`)."""
        scale = self.scale
        l2 = self._l2_by_scale.get(scale[SUMMARY])
        if l2 is None:
            l2 = [
                u.tokens
                if u.critical
                else sum(self._l2_estimate(e, scale[SUMMARY]) for e in u.entries)
                for u in self.movable
            ]
            self._l2_by_scale[scale[SUMMARY]] = l2
        # the pressure's own level falls in runs over the coldness order (evicted, cold,
        # grouped, summary, verbatim); the same comparisons as _level_at, found by
        # bisection. The size depends on t only through these runs, so it is memoised
        # by them: a search's last steps (and a reused planner's next searches) land
        # on runs already sized.
        r = self._r
        cuts = [bisect.bisect_left(r, x) for x in (t - 3, t - 2, t - 1, t)]
        memo_key = (*cuts, scale[SUMMARY], scale[GROUPED], scale[COLD])
        known = self._sizes.get(memo_key)
        if known is not None:
            return known
        size = self.protected_tokens
        grouped: dict[tuple[str, int], int] = {}
        cold = 0
        any_cold = any_evicted = False
        tokens, floor, critical, cluster = self._tokens, self._floor, self._critical, self._cluster
        starts = [0, *cuts]
        ends = [*cuts, len(r)]
        for pressure_level, a, b in zip((EVICTED, COLD, GROUPED, SUMMARY, VERBATIM), starts, ends):
            for i in range(a, b):
                if critical[i]:
                    level = EVICTED if pressure_level == EVICTED else floor[i]
                else:
                    level = floor[i] if floor[i] > pressure_level else pressure_level
                if level == VERBATIM:
                    size += tokens[i]
                elif level == SUMMARY:
                    size += l2[i]
                elif level == GROUPED:
                    key = cluster[i]
                    grouped[key] = grouped.get(key, 0) + tokens[i]
                elif level == COLD:
                    cold += tokens[i]
                    any_cold = True
                else:
                    any_evicted = True
        extra = self.summary_overhead + HEADER_TOKENS
        for total in grouped.values():
            size += min(total, int(self._target(total, GROUPED) * scale[GROUPED]) + extra)
        if any_cold:
            size += int(self._target(cold, COLD) * scale[COLD]) + extra
        elif any_evicted:
            size += extra
        if len(self._sizes) >= 65_536:  # a planner reused for very many budgets
            self._sizes.clear()
        self._sizes[memo_key] = size
        return size

    # -------------------------------------------------------------- search
    def _bisect(self, budget: int) -> float:
        low, high = 0.0, 4.0
        for _ in range(16):
            mid = (low + high) / 2
            if self.estimate(mid) <= budget:
                high = mid
            else:
                low = mid
        return high

    def solve(self, budget: int) -> Plan:
        """The plan at the least pressure that fits ``budget`` (or the most, if none).

        Summaries usually come out under their target, so after each build the
        estimates are rescaled by what was measured and the search runs again (at most
        three rounds); the fullest plan that fits wins.
        """
        # every solve starts uncalibrated: a planner reused for several budgets plans
        # each exactly as a fresh one would (its caches only hold budget-free summaries)
        self.scale = {SUMMARY: 1.0, GROUPED: 1.0, COLD: 1.0}
        if self.total <= budget or not self.movable:
            return self.build(0.0 if self.total <= budget else 4.0, budget)
        if self.estimate(4.0) > budget:
            return self.build(4.0, budget)
        best: Plan | None = None
        fit_t, over_t = 4.0, 0.0  # least pressure known to fit, most known not to
        plan = None
        for round_ in range(3):
            # after calibrating, aim a little under: estimates are within a fraction of
            # a percent by then, and a build that just misses costs a whole round
            aim = budget if round_ == 0 else budget - max(16, budget // 200)
            t = min(max(self._bisect(aim), over_t), fit_t)
            plan = self.build(t, budget)
            if plan.fits:
                fit_t = min(fit_t, t)
                if best is None or plan.after > best.after:
                    best = plan
            else:
                over_t = max(over_t, t)
            self._calibrate(plan)
            if plan.fits and plan.after >= 0.98 * budget:
                return plan
        # estimates still off: bisect on exact builds between what fits and what does not
        for _ in range(4):
            if best is None or best.after >= 0.98 * budget or fit_t - over_t < 1e-3:
                break
            t = (fit_t + over_t) / 2
            plan = self.build(t, budget)
            if plan.fits:
                fit_t = t
                if plan.after > best.after:
                    best = plan
            else:
                over_t = t
        if best is not None:
            return best
        assert plan is not None
        t = plan.pressure
        step = 0.5 / max(1, len(self.movable))
        while not plan.fits and t < 4.0:
            t = min(4.0, t + step)
            step *= 2
            plan = self.build(t, budget)
        return plan

    def _calibrate(self, plan: Plan) -> None:
        for level, (actual, planned) in plan.measured.items():
            if planned > 0 and actual > 0:
                self.scale[level] = min(1.5, max(0.1, actual / planned))

    # -------------------------------------------------------------- writing
    def build(self, t: float, budget: int) -> Plan:
        """Write the summaries for pressure ``t`` and count the result exactly."""
        levels = self.levels(t) if self.movable else {}
        plan = Plan(budget=budget, before=self.total, after=0, pressure=t)
        plan.protected_tokens = self.protected_tokens
        size = self.protected_tokens
        for unit in self.movable:
            level = levels[unit.key]
            if level == VERBATIM or (level == SUMMARY and unit.critical):
                size += unit.tokens
                continue
            if level == SUMMARY:
                for entry in unit.entries:
                    if entry.level >= SUMMARY or not self._l2_worth(entry):
                        size += entry.tokens
                        continue
                    text, tokens = self._summary_of(entry)
                    if self._notes.get(entry.id):
                        plan.item_notes[entry.id] = self._notes[entry.id]
                    if tokens >= entry.tokens:
                        size += entry.tokens
                        continue
                    plan.rewritten[entry.id] = (text, tokens)
                    plan.levels[entry.id] = SUMMARY
                    size += tokens
                    _measure(
                        plan,
                        SUMMARY,
                        tokens - entry.overhead,
                        self._target(entry.tokens - entry.overhead, SUMMARY),
                    )
        clusters, cold, evicted = self.clusters(levels)
        for cluster in clusters:
            summary = self._group_summary(cluster, GROUPED, evicted_count=0)
            if summary.tokens >= sum(u.tokens for u in cluster):
                # a group summary that saves nothing: keep the originals instead
                size += sum(u.tokens for u in cluster)
                continue
            plan.summaries.append(summary)
            for unit in cluster:
                for entry in unit.entries:
                    plan.levels[entry.id] = GROUPED
            size += summary.tokens
            tokens = sum(u.tokens for u in cluster)
            _measure(
                plan,
                GROUPED,
                summary.tokens - self.summary_overhead - HEADER_TOKENS,
                self._target(tokens, GROUPED),
            )
        if cold or evicted:
            summary = self._group_summary(cold, COLD, evicted_count=len(evicted))
            plan.summaries.append(summary)
            for unit in cold:
                for entry in unit.entries:
                    plan.levels[entry.id] = COLD
            size += summary.tokens
            if cold:
                _measure(
                    plan,
                    COLD,
                    summary.tokens - self.summary_overhead - HEADER_TOKENS,
                    self._target(sum(u.tokens for u in cold), COLD),
                )
        for unit in evicted:
            for entry in unit.entries:
                plan.levels[entry.id] = EVICTED
                plan.evicted.append(entry.id)
        plan.summaries.sort(key=lambda s: s.anchor)
        plan.after = size
        stub = next((s for s in plan.summaries if not s.covers), None)
        if size > budget and stub is not None:
            # the note saying what was archived is the last thing to give up
            plan.summaries.remove(stub)
            plan.after -= stub.tokens
            plan.notes.append("no room for the note saying what was archived")
        return plan

    def _summary_of(self, entry: MemoryEntry) -> tuple[str, int]:
        cached = self._l2.get(entry.id)
        if cached is not None:
            return cached
        header = f"[memlens: {entry.id} summarised]\n"
        target = self._target(entry.tokens - entry.overhead, SUMMARY) - self.count(header)
        summary = self.summarizer.summarize(
            [entry.content],
            max(1, target),
            count=self.count,
            tool_output=entry.tool_output,
            tokens=entry.tokens - entry.overhead,
        )
        text = header + summary.text
        result = (text, self.count_concat(header, summary.text, text) + entry.overhead)
        if summary.notes:
            self._notes[entry.id] = list(summary.notes)
        self._l2[entry.id] = result
        return result

    def _group_summary(
        self, units: list[Unit], level: int, *, evicted_count: int
    ) -> PlannedSummary:
        ids = [e.id for u in units for e in u.entries]
        key = (str(level), str(evicted_count), *ids)
        cached = self._groups.get(key)
        if cached is not None:
            return cached
        anchor = min((e.seq for u in units for e in u.entries), default=-1)
        first = ids[0] if ids else "archive"
        sid = f"summary:{level}:{first}"
        header = f"[memlens: {sid}, {len(ids)} items]" if ids else "[memlens: archive]"
        if evicted_count:
            header += f" [{evicted_count} older groups archived]"
        if not ids:
            text = header
            return PlannedSummary(
                sid, level, text, self.count(text) + self.summary_overhead, [], anchor
            )
        tokens = sum(u.tokens for u in units)
        target = self._target(tokens, level) - self.count(header) - 1
        texts = [_described(e) for u in units for e in u.entries]
        flags = [e.tool_output for u in units for e in u.entries]
        summary = self.summarizer.summarize(
            texts, max(1, target), count=self.count, tool_output=flags, tokens=tokens
        )
        text = header + "\n" + summary.text
        planned = PlannedSummary(
            sid,
            level,
            text,
            self.count_concat(header + "\n", summary.text, text) + self.summary_overhead,
            ids,
            anchor,
            summary.kept,
            summary.dropped,
            summary.method,
            list(summary.notes),
        )
        if len(self._groups) >= 4096:  # a planner reused for very many budgets
            self._groups.clear()
        self._groups[key] = planned
        return planned


def _measure(plan: Plan, level: int, actual: int, target: int) -> None:
    done, planned = plan.measured.get(level, (0, 0))
    plan.measured[level] = (done + max(0, actual), planned + target)


def _described(entry: MemoryEntry) -> str:
    """An entry's text as a group summary sees it (tool calls as name + arguments)."""
    if entry.kind == "tool_call":
        return f"{entry.payload.get('name', 'tool')}({entry.content})"
    return entry.content
