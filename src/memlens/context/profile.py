"""The context profile: per-layer totals against a budget, a timeline and leaks."""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from memlens.context.budget import status_for
from memlens.context.items import ContextItem
from memlens.context.layers import FIXED_SUBLAYERS, Layer, conversation_bucket
from memlens.context.leaks import ContextLeak, find_leaks
from memlens.context.models import DEFAULT_CONTEXT_WINDOW, ModelInfo, find_model, get_model
from memlens.context.session import (
    CallUsage,
    CompactionEvent,
    ContextSession,
    register_profile_builder,
    utcnow,
)
from memlens.context.timeline import Projection, TurnStats, build_timeline, project

#: Clients that compact on their own, and the headroom they keep (tokens below the window).
AUTO_COMPACT_BUFFER = {"claude-code": 45_000}

LARGEST_ITEMS = 20


@dataclass
class LayerProfile:
    """One layer's total, share of the budget and breakdown by sub-layer."""

    layer: Layer
    tokens: int
    items: int
    share: float
    breakdown: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer.value,
            "title": self.layer.label,
            "tokens": self.tokens,
            "items": self.items,
            "share": round(self.share, 4),
            "breakdown": self.breakdown,
        }


@dataclass
class UsageComparison:
    """The API's own usage figures beside memlens's estimate of the same call."""

    reported_context: int
    estimated_context: int
    difference: int
    difference_ratio: float
    api_calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int

    @property
    def cache_hit_rate(self) -> float | None:
        """Share of prompt tokens served from the prompt cache (None: no cache reported).

        A request whose usage has no cache fields at all says nothing about caching; a
        rate of 0 there would be a false "cache hit rate 0 %" finding.
        """
        if not self.cache_read_tokens and not self.cache_write_tokens:
            return None
        total = self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
        return self.cache_read_tokens / total if total else None

    @property
    def versus(self) -> str:
        """How memlens's estimate compares with the API's figure, in words."""
        gap = self.estimated_context - self.reported_context
        if gap == 0:
            return "the same as the API"
        side = "above" if gap > 0 else "below"
        share = abs(gap) / self.reported_context if self.reported_context else 0.0
        return f"{abs(gap):,} tokens {side} the API, {share:.1%}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "reported_context": self.reported_context,
            "estimated_context": self.estimated_context,
            "difference": self.difference,
            "difference_ratio": round(self.difference_ratio, 4),
            "api_calls": self.api_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "cache_hit_rate": None
            if self.cache_hit_rate is None
            else round(self.cache_hit_rate, 4),
        }


@dataclass
class AgentSummary:
    """A sub-agent's own context window, profiled separately from the main one."""

    name: str
    tokens: int
    items: int
    turns: int
    api_calls: int
    reported_context: int | None
    largest_layer: str
    output_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ContextProfile:
    """Where a context window's tokens go, against its budget.

    ``total_tokens`` is the estimated size of the window now; ``status`` follows the
    boundaries healthy < 70 % ≤ moderate < 85 % ≤ high < 95 % ≤ critical.
    """

    source: str
    format: str
    model: ModelInfo | None
    budget: int
    budget_source: str
    encoding: str
    approximate: bool
    exact: bool
    layers: dict[Layer, LayerProfile]
    total_tokens: int
    items: list[ContextItem]
    timeline: list[TurnStats]
    projection: Projection
    leaks: list[ContextLeak]
    usage: UsageComparison | None
    agents: list[AgentSummary]
    compactions: list[CompactionEvent]
    compaction_point: int | None
    compaction_point_source: str
    warnings: list[str]
    warning_count: int
    cache_hit_rate: float | None
    cache_stats: dict[str, Any]
    compressions: list[tuple[int, int]]
    cleanups: list[datetime]
    first_timestamp: datetime | None
    last_timestamp: datetime | None
    calls: list[CallUsage] = field(default_factory=list)
    duration_seconds: float = 0.0
    #: one-off time spent loading the tokenizer during this profile (not in the duration)
    encoding_load_seconds: float = 0.0
    profiled_at: datetime = field(default_factory=utcnow)

    @property
    def utilization(self) -> float:
        """Total tokens over the budget (may exceed 1.0)."""
        return self.total_tokens / self.budget if self.budget else 0.0

    @property
    def available_tokens(self) -> int:
        """Tokens left in the budget (negative when over)."""
        return self.budget - self.total_tokens

    @property
    def status(self) -> str:
        return status_for(self.utilization)

    @property
    def largest_component(self) -> Layer:
        """The layer holding the most tokens."""
        return max(self.layers.values(), key=lambda lp: lp.tokens).layer

    @property
    def count_label(self) -> str:
        """How the counts were made, for faces: exact, estimate or approximate."""
        if self.approximate:
            return "approximate (ceil(UTF-8 bytes / 4); tiktoken or its BPE files unavailable)"
        if self.exact:
            return f"exact ({self.encoding})"
        return f"estimate ({self.encoding}; the model's own tokenizer is not available offline)"

    def largest_items(self, n: int = LARGEST_ITEMS) -> list[ContextItem]:
        return heapq.nlargest(n, self.items, key=lambda item: item.tokens)

    def summary(self) -> dict[str, Any]:
        """The headline figures."""
        return {
            "total_tokens": self.total_tokens,
            "budget": self.budget,
            "utilization": round(self.utilization, 4),
            "available_tokens": self.available_tokens,
            "largest_component": self.largest_component.value,
            "status": self.status,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready profile (the ``--format json`` output)."""
        return {
            "source": self.source,
            "format": self.format,
            "model": self.model.to_dict() if self.model else None,
            "budget": self.budget,
            "budget_source": self.budget_source,
            "counting": {
                "encoding": self.encoding,
                "exact": self.exact,
                "approximate": self.approximate,
                "label": self.count_label,
            },
            **self.summary(),
            "compaction_point": self.compaction_point,
            "compaction_point_source": self.compaction_point_source,
            "layers": {layer.value: lp.to_dict() for layer, lp in self.layers.items()},
            "largest_items": [item.to_dict() for item in self.largest_items()],
            "item_count": len(self.items),
            "timeline": [t.to_dict() for t in self.timeline],
            "projection": self.projection.to_dict(),
            "leaks": [leak.to_dict() for leak in self.leaks],
            "usage": self.usage.to_dict() if self.usage else None,
            "agents": [a.to_dict() for a in self.agents],
            "compactions": [
                {
                    "turn": c.turn,
                    "timestamp": _iso(c.timestamp),
                    "trigger": c.trigger,
                    "pre_tokens": c.pre_tokens,
                    "dropped_tokens": c.dropped_tokens,
                    "summary_tokens": c.summary_tokens,
                }
                for c in self.compactions
            ],
            "cache_hit_rate": None
            if self.cache_hit_rate is None
            else round(self.cache_hit_rate, 4),
            "warnings": self.warnings,
            "warning_count": self.warning_count,
            "first_timestamp": _iso(self.first_timestamp),
            "last_timestamp": _iso(self.last_timestamp),
            "duration_ms": round(self.duration_seconds * 1000, 3),
            "encoding_load_ms": round(self.encoding_load_seconds * 1000, 3),
            "profiled_at": _iso(self.profiled_at),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def resolve_model(
    session: ContextSession, model: str | None, budget: int | None
) -> tuple[ModelInfo | None, int, str, list[str]]:
    """Pick the model and budget: explicit arguments, then the transcript, then a default."""
    notes: list[str] = []
    info: ModelInfo | None = None
    if model:
        info = find_model(model)
        if info is None and budget is None:
            get_model(model)  # raises a ConfigError naming the problem
    elif session.model or session.seen_model:
        name = session.model or session.seen_model or ""
        info = find_model(name)
        if info is None and budget is None:
            notes.append(
                f"model {name!r} is not in the model table; assuming a "
                f"{DEFAULT_CONTEXT_WINDOW:,}-token window (use --budget)"
            )
    if budget is not None:
        return info, budget, "budget", notes
    if info is not None:
        return info, info.context_window, f"model table ({info.name})", notes
    if not notes:
        notes.append(
            f"no model given; assuming a {DEFAULT_CONTEXT_WINDOW:,}-token window "
            "(use --model or --budget)"
        )
    return info, DEFAULT_CONTEXT_WINDOW, "default", notes


def _layers(session: ContextSession, budget: int) -> dict[Layer, LayerProfile]:
    last_turn = session.current_turn
    totals = {layer: 0 for layer in Layer}
    counts = {layer: 0 for layer in Layer}
    breakdowns: dict[Layer, dict[str, int]] = {
        layer: dict.fromkeys(FIXED_SUBLAYERS.get(layer, ()), 0) for layer in Layer
    }
    for item in session.items.values():
        layer = item.layer
        if layer is Layer.CONVERSATION:
            item.sublayer = conversation_bucket(last_turn - item.turn)
        sub = item.sublayer or "other"
        totals[layer] += item.tokens
        counts[layer] += 1
        breakdown = breakdowns[layer]
        breakdown[sub] = breakdown.get(sub, 0) + item.tokens
    result = {}
    for layer in Layer:
        breakdown = breakdowns[layer]
        if layer not in FIXED_SUBLAYERS:
            breakdown = dict(sorted(breakdown.items(), key=lambda kv: kv[1], reverse=True))
        result[layer] = LayerProfile(
            layer,
            totals[layer],
            counts[layer],
            totals[layer] / budget if budget else 0.0,
            breakdown,
        )
    return result


def _on_estimate_scale(api_tokens: int, usage: UsageComparison | None) -> int:
    """An API-reported token figure on the scale of memlens's estimate.

    An observed compaction point is what the API counted; the window it is projected
    against is memlens's estimate. The last call's two figures give the ratio.
    """
    if usage is None or not usage.reported_context or not usage.estimated_context:
        return api_tokens
    return max(1, round(api_tokens * usage.estimated_context / usage.reported_context))


def _usage(session: ContextSession) -> UsageComparison | None:
    calls = [c for turn in session.turns for c in turn.calls.values()]
    if not calls:
        return None
    measured = [c for c in calls if c.context_tokens > 0]
    if not measured:
        return None
    last = measured[-1]
    diff = last.context_tokens - last.estimated_input
    return UsageComparison(
        reported_context=last.context_tokens,
        estimated_context=last.estimated_input,
        difference=diff,
        difference_ratio=diff / last.context_tokens if last.context_tokens else 0.0,
        api_calls=len(calls),
        input_tokens=sum(c.input_tokens for c in calls),
        output_tokens=sum(c.output_tokens for c in calls),
        cache_read_tokens=sum(c.cache_read_tokens for c in calls),
        cache_write_tokens=sum(c.cache_write_tokens for c in calls),
    )


def _agents(session: ContextSession) -> list[AgentSummary]:
    summaries = []
    for name, sub in session.agents.items():
        calls = [c for t in sub.turns for c in t.calls.values()]
        measured = [c for c in calls if c.context_tokens]
        by_layer: dict[str, int] = {}
        for item in sub.items.values():
            by_layer[item.layer.value] = by_layer.get(item.layer.value, 0) + item.tokens
        summaries.append(
            AgentSummary(
                name=name,
                tokens=sub.window_tokens,
                items=len(sub.items),
                turns=len(sub.turns),
                api_calls=len(calls),
                reported_context=measured[-1].context_tokens if measured else None,
                largest_layer=max(by_layer, key=lambda k: by_layer[k]) if by_layer else "",
                output_tokens=sum(c.output_tokens for c in calls),
            )
        )
    summaries.sort(key=lambda a: a.tokens, reverse=True)
    return summaries


def build_profile(
    session: ContextSession,
    *,
    budget: int | None = None,
    model: str | None = None,
    started: float | None = None,
    extra_warnings: list[str] | None = None,
    encoding_load_seconds: float = 0.0,
) -> ContextProfile:
    """Profile ``session``: layers, totals, status, timeline, projection and leaks.

    ``started`` is a ``time.perf_counter()`` value from when reading began, so the
    reported duration covers reading and profiling. ``encoding_load_seconds`` is the
    part of that time spent loading the tokenizer: it is reported on its own and left
    out of the duration, since it is paid once per process, not per profile.
    """
    t0 = time.perf_counter() if started is None else started
    info, window, budget_source, notes = resolve_model(session, model, budget)
    layers = _layers(session, window)
    total = session.window_tokens
    timeline = build_timeline(session)
    usage = _usage(session)
    if session.auto_compact_tokens:
        point: int | None = session.auto_compact_tokens
        point_source = "observed (last automatic compaction)"
    elif session.format in AUTO_COMPACT_BUFFER:
        point = max(1, window - AUTO_COMPACT_BUFFER[session.format])
        point_source = (
            f"approximate ({session.format} keeps about "
            f"{AUTO_COMPACT_BUFFER[session.format]:,} tokens of headroom)"
        )
    else:
        point, point_source = None, "none (client does not compact automatically)"
    limit, limit_name = (
        (point, "compaction point") if point and point < window else (window, "budget")
    )
    if limit_name == "compaction point" and session.auto_compact_tokens:
        limit = _on_estimate_scale(limit, usage)
    projection = project(timeline, total, limit, limit_name)
    cache_rate = session.cache.hit_rate
    if cache_rate is None and usage is not None:
        cache_rate = usage.cache_hit_rate
    counter = session.counter
    exact = (
        (not counter.approximate)
        and info is not None
        and info.exact_tokenizer
        and info.encoding == counter.name
    )
    warnings = list(extra_warnings or []) + notes + session.warnings
    return ContextProfile(
        source=session.source,
        format=session.format,
        model=info,
        budget=window,
        budget_source=budget_source,
        encoding=counter.name,
        approximate=counter.approximate,
        exact=exact,
        layers=layers,
        total_tokens=total,
        items=list(session.items.values()),
        timeline=timeline,
        projection=projection,
        leaks=find_leaks(session),
        usage=usage,
        agents=_agents(session),
        compactions=list(session.compactions),
        compaction_point=point,
        compaction_point_source=point_source,
        warnings=warnings,
        warning_count=session.warning_count + len(notes) + len(extra_warnings or []),
        cache_hit_rate=cache_rate,
        cache_stats={
            "hits": session.cache.hits,
            "misses": session.cache.misses,
            "evictions": session.cache.evictions,
            "ttl_seconds": session.cache.ttl_seconds,
            "preloaded": session.cache.preloaded,
            "preload_hits": session.cache.preload_hits,
            "accesses": len(session.cache.accesses),
        },
        compressions=list(session.compressions),
        cleanups=list(session.cleanups),
        first_timestamp=session.first_timestamp,
        last_timestamp=session.last_timestamp,
        calls=[c for turn in session.turns for c in turn.calls.values()],
        duration_seconds=max(0.0, time.perf_counter() - t0 - encoding_load_seconds),
        encoding_load_seconds=encoding_load_seconds,
    )


register_profile_builder(build_profile)
