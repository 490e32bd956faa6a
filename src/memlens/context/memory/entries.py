"""Managed items: a context item's text plus what the manager needs to decide its fate.

A :class:`MemoryEntry` mirrors one :class:`~memlens.context.items.ContextItem` of the
memory's :class:`~memlens.context.session.ContextSession` (same id, layer, tokens),
so the profiler, ``diagnose`` and the monitor read a managed memory like any other
window. The entry adds priority, ``pinned``, a ``group`` (a tool call and its result
share one; a group is kept, compressed or evicted as a whole), its compression level
and the text it currently shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from memlens.context.layers import Layer
from memlens.core.errors import ConfigError


class Priority(str, Enum):
    """How much an item matters; ``critical`` items are never summarised."""

    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for low .. 3 for critical (higher is kept longer)."""
        return _RANK[self]

    @property
    def score(self) -> int:
        """The numeric priority written to the profiler's item (0..100)."""
        return 25 * (self.rank + 1)

    @classmethod
    def parse(cls, value: str | Priority) -> Priority:
        if isinstance(value, Priority):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            names = ", ".join(p.value for p in cls)
            raise ConfigError(f"unknown priority {value!r}: expected one of {names}") from None


_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.CRITICAL: 3}

#: Levels of compression (the product's hierarchy) and the state after eviction.
VERBATIM, SUMMARY, GROUPED, COLD, EVICTED = 1, 2, 3, 4, 5
LEVEL_NAMES = {
    VERBATIM: "verbatim",
    SUMMARY: "summary",
    GROUPED: "grouped",
    COLD: "cold",
    EVICTED: "evicted",
}


@dataclass
class MemoryEntry:
    """One managed item. ``content`` is what the window shows now."""

    id: str
    layer: Layer
    content: str
    tokens: int
    original_tokens: int
    sublayer: str = ""
    role: str = ""
    kind: str = "text"
    priority: Priority = Priority.NORMAL
    pinned: bool = False
    created: datetime | None = None
    last_accessed: datetime | None = None
    group: str = ""
    turn: int = 0
    level: int = VERBATIM
    seq: int = 0
    overhead: int = 0
    archived: bool = False
    notes: list[str] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def summarized(self) -> bool:
        return self.level > VERBATIM

    @property
    def tool_output(self) -> bool:
        return self.kind in ("tool_result", "file", "debug_info")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "layer": self.layer.value,
            "sublayer": self.sublayer,
            "role": self.role,
            "kind": self.kind,
            "tokens": self.tokens,
            "original_tokens": self.original_tokens,
            "priority": self.priority.value,
            "pinned": self.pinned,
            "group": self.group,
            "turn": self.turn,
            "level": LEVEL_NAMES[self.level],
            "notes": list(self.notes),
        }
