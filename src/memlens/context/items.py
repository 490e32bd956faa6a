"""A context item: one thing that occupies tokens in a model's context window."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from memlens.context.layers import Layer


@dataclass(slots=True)
class ContextItem:
    """One item in a context window.

    Items never need to keep their text: readers count it, hash it and drop it, so
    profiling a huge transcript holds only numbers. ``content`` is kept only when the
    builder API is asked to (``ContextSession(keep_content=True)``).
    """

    id: str
    layer: Layer
    tokens: int
    sublayer: str = ""
    label: str = ""
    kind: str = "text"
    source: str = ""
    priority: int = 0
    created: datetime | None = None
    last_accessed: datetime | None = None
    turn: int = 0
    key: str = ""
    digest: bytes = b""
    chars: int = 0
    agent: str = ""
    content: str | None = None
    access_count: int = 1
    token_history: list[int] = field(default_factory=list)

    @property
    def content_hash(self) -> str:
        """Hex digest of the item's content (empty when only a size was given)."""
        return self.digest.hex()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (content is left out)."""
        return {
            "id": self.id,
            "layer": self.layer.value,
            "sublayer": self.sublayer,
            "label": self.label,
            "kind": self.kind,
            "tokens": self.tokens,
            "source": self.source,
            "priority": self.priority,
            "created": _iso(self.created),
            "last_accessed": _iso(self.last_accessed),
            "turn": self.turn,
            "key": self.key,
            "content_hash": self.content_hash,
            "agent": self.agent,
            "access_count": self.access_count,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None
