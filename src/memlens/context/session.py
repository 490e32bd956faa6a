"""A context session: the items in a window, turn by turn, with the API's own usage.

:class:`ContextSession` is both the builder API (``session.add_system_prompt(...)``,
``session.add_working("files", text, key="file:app.py")``) and the state the
transcript readers fill. It keeps token counts and digests, not text (unless
``keep_content=True``), so it stays small however long the transcript.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from memlens.context.items import ContextItem
from memlens.context.layers import DEFAULT_PRIORITY, Layer, check_sublayer
from memlens.context.tokens import CachedCounter, get_counter

if TYPE_CHECKING:
    from memlens.context.profile import ContextProfile

#: What ``ContextSession.profile()`` calls. The profile is an analysis a layer above
#: this meter (it imports the session, never the reverse), so it registers itself
#: here when it loads; ``memlens.context`` imports it before any session can exist.
_profile_builder: Callable[..., ContextProfile] | None = None


def register_profile_builder(builder: Callable[..., ContextProfile]) -> None:
    """Set what :meth:`ContextSession.profile` runs (``memlens.context.profile`` does)."""
    global _profile_builder
    _profile_builder = builder


#: Layers a compaction keeps by default (everything else is summarised away).
KEPT_BY_COMPACTION = (
    Layer.SYSTEM_PROMPT,
    Layer.TOOL_DEFINITIONS,
    Layer.MEMORY_FILES,
    Layer.LONG_TERM_MEMORY,
    Layer.CACHE,
)

MAX_WARNINGS = 200

#: Tool outputs smaller than this are not tracked for duplicates (not worth a leak).
MIN_TRACKED_OUTPUT = 50


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(slots=True)
class CallUsage:
    """One API call's own usage figures, beside memlens's estimate of its input."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    estimated_input: int = 0
    timestamp: datetime | None = None

    @property
    def context_tokens(self) -> int:
        """Everything the call sent: fresh input plus cache reads and writes."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


@dataclass
class Turn:
    """One turn: a user prompt and everything the assistant did until the next one."""

    index: int
    started: datetime | None = None
    label: str = ""
    context_tokens: int = 0
    start_tokens: int = 0
    calls: dict[str, CallUsage] = field(default_factory=dict)
    compacted: bool = False


@dataclass
class CompactionEvent:
    """A compaction boundary: the window was summarised and restarted."""

    turn: int
    timestamp: datetime | None
    trigger: str
    pre_tokens: int | None
    dropped_tokens: int
    summary_tokens: int = 0


@dataclass(slots=True)
class Observation:
    """One sighting of a keyed item (a file read, a command's output) for leak checks."""

    item_id: str
    kind: str
    tokens: int
    digest: bytes
    turn: int
    label: str


@dataclass
class CacheStats:
    """Cache counters a service records (the builder API) or a transcript implies."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0
    ttl_seconds: float | None = None
    preloaded: int = 0
    preload_hits: int = 0
    accesses: list[str] = field(default_factory=list)

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None


class ContextSession:
    """The items of one context window and their history.

    Build one directly to profile a service's own context assembly::

        s = ContextSession(model="claude-sonnet-4-5")
        s.add_system_prompt("You are ...")
        s.add_tool({"name": "search", "description": "...", "input_schema": {...}})
        s.add_message("user", "Fix the failing test")
        s.add_working("files", source_text, key="file:app.py", label="app.py")
        profile = s.profile()
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        name: str = "session",
        counter: CachedCounter | None = None,
        encoding: str | None = None,
        keep_content: bool = False,
        source: str = "api",
        format: str = "api",
        track_leaks: bool = True,
    ) -> None:
        if counter is None:
            if encoding is None:
                from memlens.context.models import find_model

                info = find_model(model) if model else None
                encoding = info.encoding if info else "cl100k_base"
            counter = get_counter(encoding)
        self.model = model
        self.name = name
        self.counter = counter
        self.keep_content = keep_content
        self.source = source
        self.format = format
        #: false for a session that only measures (a fit's reference read): the
        #: observations leak diagnoses need are then not kept
        self.track_leaks = track_leaks
        self.items: dict[str, ContextItem] = {}
        self.window_tokens = 0
        self.turns: list[Turn] = []
        self.compactions: list[CompactionEvent] = []
        self.observations: dict[str, list[Observation]] = {}
        self.outputs: dict[bytes, list[Observation]] = {}
        self.cache = CacheStats()
        self.compressions: list[tuple[int, int]] = []
        self.cleanups: list[datetime] = []
        self.warnings: list[str] = []
        self.warning_count = 0
        self.agents: dict[str, ContextSession] = {}
        self.hidden_overhead = 0
        self.first_timestamp: datetime | None = None
        self.last_timestamp: datetime | None = None
        self.lines_read = 0
        self.records = 0
        self.auto_compact_tokens: int | None = None
        self.seen_model: str | None = None
        self._ids = itertools.count(1)

    # ----------------------------------------------------------------- bookkeeping
    def warn(self, message: str) -> None:
        """Record a non-fatal problem (a malformed line), keeping at most 200."""
        self.warning_count += 1
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)

    def _stamp(self, when: datetime | None) -> datetime:
        if when is None:
            # an untimed record happened no later than the last one we know of: taking
            # "now" would make the transcript look idle for hours
            return self.last_timestamp or utcnow()
        if self.first_timestamp is None or when < self.first_timestamp:
            self.first_timestamp = when
        if self.last_timestamp is None or when > self.last_timestamp:
            self.last_timestamp = when
        return when

    @property
    def current_turn(self) -> int:
        """Index of the current turn (0 before the first user prompt)."""
        return self.turns[-1].index if self.turns else 0

    def new_turn(self, timestamp: datetime | None = None, label: str = "") -> Turn:
        """Start a turn (readers call this on each real user prompt)."""
        turn = Turn(
            index=len(self.turns) + 1,
            started=timestamp,
            label=label[:80],
            context_tokens=self.window_tokens,
            start_tokens=self.window_tokens,
        )
        self.turns.append(turn)
        return turn

    def _turn(self) -> Turn:
        return self.turns[-1] if self.turns else self.new_turn()

    def _resized(self) -> None:
        if self.turns:
            self.turns[-1].context_tokens = self.window_tokens

    # ----------------------------------------------------------------- items
    def count(self, content: str) -> tuple[int, bytes]:
        """Token count and digest of ``content`` with this session's counter."""
        if not content:
            return 0, b""
        return self.counter.count_digest(content)

    def add(
        self,
        layer: Layer | str,
        content: str | None = None,
        *,
        tokens: int | None = None,
        id: str | None = None,
        sublayer: str = "",
        label: str = "",
        kind: str = "text",
        source: str = "",
        priority: int | None = None,
        created: datetime | None = None,
        last_accessed: datetime | None = None,
        key: str = "",
        agent: str = "",
        overhead: int = 0,
        digest: bytes | None = None,
    ) -> ContextItem:
        """Add an item with its ``content`` (counted here) or a known ``tokens`` size.

        ``overhead`` adds a format's framing tokens (per message, per tool) to the count.
        Re-adding an existing ``id`` replaces that item.
        """
        layer = Layer.parse(layer)
        if layer is not Layer.CONVERSATION:
            sublayer = check_sublayer(layer, sublayer) if sublayer else sublayer
        if content is None and tokens is None:
            raise ValueError("an item needs content or a token count")
        chars = 0
        item_digest = digest or b""
        if content is not None and not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        if tokens is None:
            assert content is not None
            tokens, item_digest = self.count(content)
        elif content is not None and not item_digest:
            item_digest = self.count(content)[1] if content else b""
        if tokens < 0:
            raise ValueError(f"an item cannot have a negative token count ({tokens})")
        if content is not None:
            chars = len(content)
        when = self._stamp(created)
        item_id = id or f"{layer.value}:{next(self._ids)}"
        if item_id in self.items:
            self.remove(item_id)
        item = ContextItem(
            id=item_id,
            layer=layer,
            tokens=int(tokens) + overhead,
            sublayer=sublayer,
            label=label or _label(content, layer, sublayer),
            kind=kind,
            source=source,
            priority=DEFAULT_PRIORITY[layer] if priority is None else priority,
            created=when,
            last_accessed=last_accessed or when,
            turn=self._turn().index if layer is Layer.CONVERSATION or self.turns else 0,
            key=key,
            digest=item_digest,
            chars=chars,
            agent=agent,
            content=content if self.keep_content else None,
        )
        item.token_history.append(item.tokens)
        self.items[item_id] = item
        self.window_tokens += item.tokens
        self._resized()
        return item

    def add_counted(
        self,
        layer: Layer,
        content: str,
        tokens: int,
        digest: bytes,
        *,
        id: str,
        kind: str,
        priority: int,
        created: datetime | None,
    ) -> ContextItem:
        """:meth:`add` of an item whose size is already known: ``tokens`` (framing
        included) and ``digest`` of ``content``, no sublayer, a parsed ``layer``. The
        same item, made without counting or checking again (a memory built from a
        reader's counts adds thousands)."""
        when = self._stamp(created)
        if id in self.items:
            self.remove(id)
        turns = self.turns
        if layer is Layer.CONVERSATION:
            turn = (turns[-1] if turns else self.new_turn()).index
        else:
            turn = turns[-1].index if turns else 0
        item = ContextItem(
            id,
            layer,
            tokens,
            "",
            _label(content, layer, ""),
            kind,
            "",
            priority,
            when,
            when,
            turn,
            "",
            digest,
            len(content),
            "",
            content if self.keep_content else None,
        )
        item.token_history.append(tokens)
        self.items[id] = item
        self.window_tokens += tokens
        if turns:
            turns[-1].context_tokens = self.window_tokens
        return item

    def remove(self, item_id: str) -> ContextItem:
        """Remove an item from the window."""
        item = self.items.pop(item_id)
        self.window_tokens -= item.tokens
        self._resized()
        return item

    def touch(self, item_id: str, when: datetime | None = None) -> None:
        """Record an access to an item (used by the inactivity and access diagnoses)."""
        item = self.items[item_id]
        item.last_accessed = self._stamp(when)
        item.access_count += 1
        if item.layer is Layer.CACHE and len(self.cache.accesses) < 100_000:
            self.cache.accesses.append(item_id)

    def update(
        self, item_id: str, content: str | None = None, *, tokens: int | None = None
    ) -> ContextItem:
        """Replace an item's content or size, keeping its token history (growth checks)."""
        item = self.items[item_id]
        if content is None and tokens is None:
            raise ValueError("update needs content or tokens")
        if tokens is None:
            assert content is not None
            tokens, item.digest = self.count(content)
        self.window_tokens += tokens - item.tokens
        item.tokens = tokens
        item.token_history.append(tokens)
        if len(item.token_history) > 64:
            del item.token_history[:-64]
        if content is not None and self.keep_content:
            item.content = content
        item.last_accessed = self._stamp(None)
        self._resized()
        return item

    # ----------------------------------------------------------------- builders
    def add_system_prompt(self, text: str, **kw: Any) -> ContextItem:
        """Add (a part of) the system prompt."""
        return self.add(Layer.SYSTEM_PROMPT, text, **{"label": "system prompt", **kw})

    def add_tool(self, definition: dict[str, Any] | str, **kw: Any) -> ContextItem:
        """Add a tool definition (a JSON schema dict or its text); the sublayer is its name."""
        if isinstance(definition, dict):
            name = str(
                definition.get("name") or definition.get("function", {}).get("name") or "tool"
            )
            text = json.dumps(definition, ensure_ascii=False, separators=(",", ":"))
        else:
            name, text = kw.pop("name", "tool"), definition
        kw.setdefault("sublayer", name)
        kw.setdefault("label", name)
        return self.add(Layer.TOOL_DEFINITIONS, text, **kw)

    def add_memory_file(self, path: str, text: str, **kw: Any) -> ContextItem:
        """Add a memory file (CLAUDE.md, AGENTS.md, a notes file) by path."""
        kw.setdefault("sublayer", path)
        kw.setdefault("label", path)
        kw.setdefault("key", f"file:{path}")
        return self.add(Layer.MEMORY_FILES, text, **kw)

    def add_working(self, sublayer: str, content: str | None = None, **kw: Any) -> ContextItem:
        """Add working memory: ``files``, ``modules``, ``tasks`` or ``debug_info``."""
        item = self.add(Layer.WORKING_MEMORY, content, sublayer=sublayer, **kw)
        if item.key:
            self.observe(item, "file_read" if sublayer == "files" else "tool_output")
        return item

    def add_long_term(self, sublayer: str, content: str | None = None, **kw: Any) -> ContextItem:
        """Add long-term memory: ``archived_tasks``, ``consolidated`` or ``compressed``."""
        return self.add(Layer.LONG_TERM_MEMORY, content, sublayer=sublayer, **kw)

    def add_cache(self, tier: str, content: str | None = None, **kw: Any) -> ContextItem:
        """Add a cached item in the ``hot``, ``warm`` or ``cold`` tier."""
        return self.add(Layer.CACHE, content, sublayer=tier, **kw)

    def add_agent_state(self, agent: str, content: str | None = None, **kw: Any) -> ContextItem:
        """Add an agent's state (one entry per agent: re-adding replaces it)."""
        kw.setdefault("id", f"agent:{agent}")
        kw.setdefault("label", agent)
        return self.add(Layer.AGENT_STATES, content, sublayer=agent, agent=agent, **kw)

    def add_message(
        self, role: str, content: str | None = None, *, new_turn: bool | None = None, **kw: Any
    ) -> ContextItem:
        """Add a conversation message; a ``user`` message starts a new turn."""
        if new_turn is None:
            new_turn = role == "user"
        if new_turn:
            self.new_turn(kw.get("created"), label=(content or "")[:80])
        kw.setdefault("kind", role)
        kw.setdefault("label", f"{role}: {_label(content, Layer.CONVERSATION, '')}")
        return self.add(Layer.CONVERSATION, content, **kw)

    # ----------------------------------------------------------------- events
    def observe(self, item: ContextItem, kind: str) -> None:
        """Remember a keyed item for leak detection (repeats, duplicates, growth)."""
        if not self.track_leaks:
            return
        obs = Observation(item.id, kind, item.tokens, item.digest, item.turn, item.label)
        if item.key:
            history = self.observations.setdefault(item.key, [])
            history.append(obs)
            if len(history) > 256:
                del history[:-256]
            for earlier in history[:-1]:
                old = self.items.get(earlier.item_id)
                if old is not None:
                    old.last_accessed = item.created
        if item.digest and kind == "tool_output" and item.tokens >= MIN_TRACKED_OUTPUT:
            same = self.outputs.setdefault(item.digest, [])
            if len(same) < 256:
                same.append(obs)

    def record_call(
        self,
        call_id: str,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        timestamp: datetime | None = None,
        estimated_input: int | None = None,
    ) -> CallUsage:
        """Record (or refresh) one API call's usage in the current turn."""
        turn = self._turn()
        call = turn.calls.get(call_id)
        if call is None:
            est = self.window_tokens if estimated_input is None else estimated_input
            call = CallUsage(estimated_input=est, timestamp=timestamp)
            turn.calls[call_id] = call
        call.input_tokens = int(input_tokens)
        call.output_tokens = int(output_tokens)
        call.cache_read_tokens = int(cache_read_tokens)
        call.cache_write_tokens = int(cache_write_tokens)
        if timestamp is not None:
            self._stamp(timestamp)
        return call

    def compact(
        self,
        *,
        trigger: str = "manual",
        pre_tokens: int | None = None,
        timestamp: datetime | None = None,
        keep: Iterable[Layer] = KEPT_BY_COMPACTION,
    ) -> CompactionEvent:
        """Apply a compaction boundary: drop every item outside the ``keep`` layers."""
        kept = set(keep)
        dropped = 0
        for item_id in [i for i, item in self.items.items() if item.layer not in kept]:
            dropped += self.items.pop(item_id).tokens
        self.window_tokens -= dropped
        event = CompactionEvent(
            turn=self.current_turn,
            timestamp=timestamp,
            trigger=trigger,
            pre_tokens=pre_tokens,
            dropped_tokens=dropped,
        )
        self.compactions.append(event)
        self.cleanups.append(self._stamp(timestamp))
        if self.turns:
            self.turns[-1].compacted = True
        self._resized()
        return event

    def record_cache(
        self,
        *,
        hits: int = 0,
        misses: int = 0,
        evictions: int = 0,
        ttl_seconds: float | None = None,
        preloaded: int = 0,
        preload_hits: int = 0,
    ) -> CacheStats:
        """Add to the cache counters of a service's own context cache."""
        self.cache.hits += hits
        self.cache.misses += misses
        self.cache.evictions += evictions
        self.cache.preloaded += preloaded
        self.cache.preload_hits += preload_hits
        if ttl_seconds is not None:
            self.cache.ttl_seconds = ttl_seconds
        return self.cache

    def record_compression(self, original_tokens: int, compressed_tokens: int) -> None:
        """Record one compression (summary) of ``original`` tokens into ``compressed``."""
        self.compressions.append((int(original_tokens), int(compressed_tokens)))

    def record_cleanup(self, when: datetime | None = None) -> None:
        """Record one cleanup (eviction pass) of the window."""
        self.cleanups.append(self._stamp(when))

    def reset_window(self) -> None:
        """Forget every item and turn (a request file replaces the whole window)."""
        self.items.clear()
        self.window_tokens = 0
        self.turns.clear()
        self.observations.clear()
        self.outputs.clear()
        self.hidden_overhead = 0

    def agent(self, name: str) -> ContextSession:
        """The sub-session of a sub-agent (created on first use)."""
        sub = self.agents.get(name)
        if sub is None:
            sub = ContextSession(
                self.model, name=name, counter=self.counter, source=self.source, format=self.format
            )
            self.agents[name] = sub
        return sub

    # ----------------------------------------------------------------- results
    def profile(
        self, *, budget: int | None = None, model: str | None = None, **kw: Any
    ) -> ContextProfile:
        """Profile this session against ``budget`` (or the model's context window)."""
        if _profile_builder is None:  # pragma: no cover - memlens.context loads it first
            raise RuntimeError("memlens.context.profile is not loaded")
        return _profile_builder(self, budget=budget, model=model, **kw)


def _label(content: str | None, layer: Layer, sublayer: str) -> str:
    if content:
        first = " ".join(content[:120].split())
        return first[:60] + ("…" if len(first) > 60 else "")
    return sublayer or layer.label
