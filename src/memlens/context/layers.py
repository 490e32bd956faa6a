"""The layers a context window is made of, and the sub-layers of each.

A context window is profiled the way a disk is: by what occupies it. Every item in a
window belongs to exactly one :class:`Layer`; most layers split further into named
sub-layers (a working-memory item is one of ``files``, ``modules``, ``tasks`` or
``debug_info``; a conversation item is ``recent``, ``medium`` or ``old`` by age).
"""

from __future__ import annotations

from enum import Enum


class Layer(str, Enum):
    """One layer of a model's context window."""

    SYSTEM_PROMPT = "system_prompt"
    TOOL_DEFINITIONS = "tool_definitions"
    MEMORY_FILES = "memory_files"
    WORKING_MEMORY = "working_memory"
    LONG_TERM_MEMORY = "long_term_memory"
    CACHE = "cache"
    AGENT_STATES = "agent_states"
    CONVERSATION = "conversation_history"

    @property
    def label(self) -> str:
        """A short human name, e.g. ``"working memory"``."""
        return _TITLES[self]

    @classmethod
    def parse(cls, value: str | Layer) -> Layer:
        """Accept a layer, its value or a loose spelling (``"tools"``, ``"history"``)."""
        if isinstance(value, Layer):
            return value
        key = str(value).strip().lower().replace("-", "_").replace(" ", "_")
        found = _ALIASES.get(key)
        if found is None:
            try:
                return cls(key)
            except ValueError:
                names = ", ".join(layer.value for layer in cls)
                raise ValueError(f"unknown layer {value!r}: expected one of {names}") from None
        return found


_TITLES: dict[Layer, str] = {
    Layer.SYSTEM_PROMPT: "system prompt",
    Layer.TOOL_DEFINITIONS: "tool definitions",
    Layer.MEMORY_FILES: "memory files",
    Layer.WORKING_MEMORY: "working memory",
    Layer.LONG_TERM_MEMORY: "long-term memory",
    Layer.CACHE: "cache",
    Layer.AGENT_STATES: "agent states",
    Layer.CONVERSATION: "conversation history",
}

_ALIASES: dict[str, Layer] = {
    "system": Layer.SYSTEM_PROMPT,
    "tools": Layer.TOOL_DEFINITIONS,
    "tool": Layer.TOOL_DEFINITIONS,
    "memory": Layer.MEMORY_FILES,
    "working": Layer.WORKING_MEMORY,
    "long_term": Layer.LONG_TERM_MEMORY,
    "agents": Layer.AGENT_STATES,
    "agent": Layer.AGENT_STATES,
    "conversation": Layer.CONVERSATION,
    "history": Layer.CONVERSATION,
}

#: Sub-layers with a fixed vocabulary. Other layers use free names (a tool's name,
#: a memory file's path, an agent's name).
WORKING_SUBLAYERS = ("files", "modules", "tasks", "debug_info")
LONG_TERM_SUBLAYERS = ("archived_tasks", "consolidated", "compressed")
CACHE_SUBLAYERS = ("hot", "warm", "cold")
CONVERSATION_SUBLAYERS = ("recent", "medium", "old")

FIXED_SUBLAYERS: dict[Layer, tuple[str, ...]] = {
    Layer.WORKING_MEMORY: WORKING_SUBLAYERS,
    Layer.LONG_TERM_MEMORY: LONG_TERM_SUBLAYERS,
    Layer.CACHE: CACHE_SUBLAYERS,
    Layer.CONVERSATION: CONVERSATION_SUBLAYERS,
}

#: Conversation age buckets: the last 10 turns are recent, turns 10-50 back medium.
RECENT_TURNS = 10
MEDIUM_TURNS = 50

#: Default priority of an item by layer (higher is kept longer by a cleanup).
DEFAULT_PRIORITY: dict[Layer, int] = {
    Layer.SYSTEM_PROMPT: 100,
    Layer.TOOL_DEFINITIONS: 90,
    Layer.MEMORY_FILES: 80,
    Layer.WORKING_MEMORY: 50,
    Layer.LONG_TERM_MEMORY: 40,
    Layer.CACHE: 30,
    Layer.AGENT_STATES: 45,
    Layer.CONVERSATION: 60,
}


def conversation_bucket(turns_ago: int) -> str:
    """The conversation sub-layer of an item ``turns_ago`` turns before the latest.

    ``0`` is the current turn. Recent = the last 10 turns, medium = 10-50, old = the rest.
    """
    if turns_ago < RECENT_TURNS:
        return "recent"
    if turns_ago < MEDIUM_TURNS:
        return "medium"
    return "old"


def check_sublayer(layer: Layer, sublayer: str) -> str:
    """Validate a sub-layer for layers with a fixed vocabulary; return it normalised."""
    allowed = FIXED_SUBLAYERS.get(layer)
    name = sublayer.strip().lower().replace("-", "_").replace(" ", "_") if allowed else sublayer
    if allowed and name not in allowed:
        raise ValueError(
            f"unknown {layer.label} sub-layer {sublayer!r}: expected one of {', '.join(allowed)}"
        )
    return name
