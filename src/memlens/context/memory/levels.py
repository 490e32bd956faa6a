"""The four compression levels and the rules that put an item in one.

Defaults are the product's: level 1 (verbatim) for critical items or items younger
than an hour; level 2 (one summary per item, about 50 %) for high priority or younger
than a day; level 3 (similar items grouped, one summary per group, about 20 %) for
younger than a week; level 4 (one summary for everything colder, about 5 %).
Items without a timestamp (a request's messages) count as young: their level then
comes only from the pressure of the budget (see :mod:`.plan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from memlens.context.memory.entries import (
    COLD,
    GROUPED,
    SUMMARY,
    VERBATIM,
    MemoryEntry,
    Priority,
)
from memlens.core.errors import ConfigError

HOUR = 3600.0


def _default_ratios() -> dict[int, float]:
    return {SUMMARY: 0.5, GROUPED: 0.2, COLD: 0.05}


@dataclass(frozen=True)
class LevelRules:
    """When an item moves down a level, and how small each level's summaries are."""

    verbatim_age: float = HOUR
    summary_age: float = 24 * HOUR
    grouped_age: float = 7 * 24 * HOUR
    ratios: dict[int, float] = field(default_factory=_default_ratios)
    #: Items smaller than this are never summarised alone (a summary would not save).
    min_summary_tokens: int = 40
    #: Turns grouped together at level 3 (items of one kind within this many turns).
    group_turns: int = 10

    def __post_init__(self) -> None:
        if not 0 <= self.verbatim_age <= self.summary_age <= self.grouped_age:
            raise ConfigError(
                "invalid level rules: verbatim_age <= summary_age <= grouped_age is required"
            )
        for level in (SUMMARY, GROUPED, COLD):
            ratio = self.ratios.get(level)
            if ratio is None or not 0 < ratio <= 1:
                raise ConfigError(f"invalid level {level} ratio {ratio!r}: expected 0 < ratio <= 1")

    def ratio(self, level: int) -> float:
        return self.ratios[level]

    def level_for(self, entry: MemoryEntry, now: datetime) -> int:
        """The level an entry belongs in by age and priority alone."""
        if entry.priority is Priority.CRITICAL or entry.pinned:
            return VERBATIM
        when = entry.last_accessed or entry.created
        age = (now - when).total_seconds() if when is not None else 0.0
        if age < self.verbatim_age:
            return VERBATIM
        if entry.priority is Priority.HIGH or age < self.summary_age:
            return SUMMARY
        if age < self.grouped_age:
            return GROUPED
        return COLD
