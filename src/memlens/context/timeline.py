"""Per-turn timeline of a transcript and a projection of the turns left."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from memlens.context.session import ContextSession

#: Turns the growth rate of the projection is averaged over.
PROJECTION_WINDOW = 10


@dataclass
class TurnStats:
    """One turn of the timeline: window size at its end and tokens the API spent."""

    index: int
    started: str | None
    label: str
    context_tokens: int
    delta_tokens: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    api_calls: int
    reported_context: int | None
    compacted: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Projection:
    """How many more turns fit before ``limit_tokens`` at the recent growth rate."""

    limit_tokens: int
    limit: str
    current_tokens: int
    growth_per_turn: float
    turns_left: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_timeline(session: ContextSession) -> list[TurnStats]:
    """The timeline of ``session``'s turns (empty when it has none)."""
    stats: list[TurnStats] = []
    previous = 0
    for turn in session.turns:
        calls = list(turn.calls.values())
        reported = None
        if calls:
            last = calls[-1]
            if last.context_tokens:
                # one meaning everywhere: the context the API says the last call sent
                # (input + cache reads + cache writes), as in the usage comparison
                reported = last.context_tokens
        stats.append(
            TurnStats(
                index=turn.index,
                started=turn.started.isoformat().replace("+00:00", "Z") if turn.started else None,
                label=turn.label,
                context_tokens=turn.context_tokens,
                delta_tokens=turn.context_tokens - previous,
                input_tokens=sum(c.input_tokens for c in calls),
                output_tokens=sum(c.output_tokens for c in calls),
                cache_read_tokens=sum(c.cache_read_tokens for c in calls),
                cache_write_tokens=sum(c.cache_write_tokens for c in calls),
                api_calls=len(calls),
                reported_context=reported,
                compacted=turn.compacted,
            )
        )
        previous = turn.context_tokens
    return stats


def project(
    timeline: list[TurnStats], current_tokens: int, limit_tokens: int, limit: str
) -> Projection:
    """Project the turns left before ``limit_tokens`` from the recent per-turn growth.

    Growth is the mean change over the last :data:`PROJECTION_WINDOW` turns (after the
    first) that did not compact; ``turns_left`` is ``None`` when the window is not
    growing or there is only one turn.
    """
    # the first turn carries the fixed load (system prompt, tools): not growth
    recent = [t.delta_tokens for t in timeline[1:][-PROJECTION_WINDOW:] if not t.compacted]
    growth = sum(recent) / len(recent) if recent else 0.0
    if current_tokens >= limit_tokens:
        left: int | None = 0
    elif growth <= 0:
        left = None
    else:
        left = int((limit_tokens - current_tokens) // growth)
    return Projection(limit_tokens, limit, current_tokens, round(growth, 1), left)
