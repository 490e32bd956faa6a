"""``fit_messages``: fit an OpenAI chat or Anthropic Messages list into a token budget.

The list becomes a :class:`ContextMemory` (system prompt and tool definitions pinned,
each assistant message grouped with its tool calls and their results), is fitted,
and is written back as a list the same API accepts: roles and tool pairing valid,
the system prompt untouched, summaries as user messages where the originals were.
The result's size is measured by the profiler's own request readers (the same
counts ``memlens context`` shows); if that exact count is over, the fit is redone
with a tighter target, so the budget holds by the readers' measure.
"""

from __future__ import annotations

import collections
import copy
import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from memlens.context.budget import parse_budget
from memlens.context.images import anthropic_image_tokens, openai_image_tokens
from memlens.context.layers import Layer
from memlens.context.memory.entries import GROUPED, VERBATIM, MemoryEntry, Priority
from memlens.context.memory.gcpause import gc_paused
from memlens.context.memory.memory import BudgetError, ContextMemory, FitReport
from memlens.context.memory.plan import Plan, Planner
from memlens.context.models import get_model
from memlens.context.readers.anthropic_messages import AnthropicMessagesReader
from memlens.context.readers.common import compact_json, flatten_text
from memlens.context.readers.openai_chat import OpenAIChatReader
from memlens.context.session import ContextSession
from memlens.context.tokens import digest_memo, digest_text
from memlens.core.errors import ConfigError, InputFormatError

if TYPE_CHECKING:
    from memlens.context.profile import ContextProfile

OPENAI = "openai-chat"
ANTHROPIC = "anthropic-messages"
FORMATS = (OPENAI, ANTHROPIC)

#: What the user writes (instructions, constraints, figures) is small and hard to get
#: back, unlike a tool's output, so it is compressed after everything else.
USER_PRIORITY = Priority.HIGH

_OPENAI_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
_ANTHROPIC_ROLES = {"user", "assistant"}


@dataclass
class FitResult:
    """A fitted request: ``messages`` (and ``system`` for Anthropic) plus the report."""

    messages: list[dict[str, Any]]
    format: str
    report: FitReport
    tokens_before: int
    tokens_after: int
    budget: int
    system: Any = None
    tools: list[Any] | None = None
    notes: list[str] = field(default_factory=list)
    #: the fitted memory, or how to build it (a :class:`RequestFitter` fitting many
    #: budgets builds it only when asked: the same plan applied to a fresh memory)
    source: ContextMemory | Callable[[], ContextMemory] | None = field(default=None, repr=False)

    @property
    def memory(self) -> ContextMemory:
        """The managed memory after the fit: archive, events, ``expand``."""
        if not isinstance(self.source, ContextMemory):
            assert self.source is not None
            self.source = self.source()
        return self.source

    def request(self, **extra: Any) -> dict[str, Any]:
        """The fitted request body (``messages``, and ``system``/``tools`` when given)."""
        body: dict[str, Any] = dict(extra)
        if self.system is not None:
            body["system"] = self.system
        if self.tools:
            body["tools"] = self.tools
        body["messages"] = self.messages
        return body

    def expand(self, item_id: str) -> list[str]:
        """The original texts behind a summary or an evicted item."""
        return [a.content for a in self.memory.expand(item_id)]

    def profile(self) -> ContextProfile:
        """The profiler's profile of the fitted request against the budget."""
        session = read_request(
            self.messages,
            self.format,
            model=self.memory.model,
            system=self.system,
            tools=self.tools,
            counter=self.memory.session.counter,
        )
        return session.profile(budget=self.budget)

    def to_dict(self) -> dict[str, Any]:
        data = self.report.to_dict()
        data.update(
            format=self.format,
            tokens_before=self.tokens_before,
            tokens_after=self.tokens_after,
            budget=self.budget,
            messages_before=None,
            messages_after=len(self.messages),
            notes=self.notes + data.get("notes", []),
        )
        return data


def detect(messages: Sequence[Any], system: Any = None) -> str:
    """``anthropic-messages`` when blocks or a ``system`` argument say so, else OpenAI."""
    if system is not None:
        return ANTHROPIC
    for m in messages:
        if not isinstance(m, dict):
            continue
        if m.get("role") in ("system", "developer", "tool", "function") or "tool_calls" in m:
            return OPENAI
        content = m.get("content")
        if isinstance(content, list) and any(
            isinstance(b, dict)
            and b.get("type") in ("tool_use", "tool_result", "image", "thinking")
            for b in content
        ):
            return ANTHROPIC
    return OPENAI


def _check_messages(messages: Any, fmt: str) -> None:
    if not isinstance(messages, (list, tuple)):
        raise InputFormatError(
            f"messages must be a list of message objects, not {type(messages).__name__}"
        )
    roles = _OPENAI_ROLES if fmt == OPENAI else _ANTHROPIC_ROLES
    for index, m in enumerate(messages):
        if not isinstance(m, dict):
            raise InputFormatError(f"message {index} is not an object ({type(m).__name__})")
        role = m.get("role")
        if role not in roles:
            raise InputFormatError(
                f"message {index} has role {role!r}: {fmt} expects one of {', '.join(sorted(roles))}"
            )
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise InputFormatError(f"message {index}: content must be text or a list of blocks")


class _Builder:
    """Turns a message list into memory entries, remembering how to write them back.

    ``tokens`` holds the profiler reader's count of each entry (by entry id, framing
    included): each entry is made with it, so the memory adds up to what the reader
    measures without counting its items a second time."""

    def __init__(self, memory: ContextMemory, fmt: str, tokens: dict[str, int]) -> None:
        self.memory = memory
        self.fmt = fmt
        self.tokens = tokens
        self.calls: dict[str, str] = {}

    def add(
        self,
        content: str,
        msg: int,
        block: int,
        raw: Any = None,
        *,
        id: str,
        layer: Layer = Layer.CONVERSATION,
        role: str = "",
        kind: str = "text",
        priority: Priority = Priority.NORMAL,
        pinned: bool = False,
        group: str = "",
        overhead: int = 0,
        new_turn: bool | None = None,
        payload: dict[str, Any] | None = None,
    ) -> MemoryEntry:
        # the original message or block goes to the archive with the text, so an
        # image or a call's exact arguments are recoverable too
        if payload is None:
            payload = {"msg": msg, "block": block, "raw": raw}
        else:
            payload.update(msg=msg, block=block, raw=raw)
        return self.memory.add_counted(
            content,
            self.tokens.get(id, 0),
            id=id,
            layer=layer,
            role=role,
            kind=kind,
            priority=priority,
            pinned=pinned,
            group=group,
            overhead=overhead,
            payload=payload,
            new_turn=bool(new_turn or (new_turn is None and role == "user" and kind == "text")),
        )

    def openai(self, messages: Sequence[dict[str, Any]]) -> None:
        for i, m in enumerate(messages):
            role = m["role"]
            overhead = 4 + (1 if m.get("name") else 0)
            text, images = flatten_text(m.get("content"))
            mid, group = f"m{i}", f"m{i}"
            if role in ("system", "developer"):
                self.add(
                    text,
                    i,
                    0,
                    m,
                    id=mid,
                    layer=Layer.SYSTEM_PROMPT,
                    kind="system",
                    role=role,
                    pinned=True,
                    overhead=overhead,
                )
                continue
            if role in ("tool", "function"):
                call_id = str(m.get("tool_call_id") or m.get("name") or "")
                if call_id not in self.calls:
                    raise InputFormatError(
                        f"message {i}: tool result for call {call_id!r}, which no earlier "
                        "assistant message made"
                    )
                self.add(
                    text,
                    i,
                    0,
                    m,
                    id=mid,
                    role="tool",
                    kind="tool_result",
                    group=self.calls.pop(call_id),
                    overhead=overhead,
                    payload={"call_id": call_id},
                )
                continue
            opaque = bool(images) or (isinstance(m.get("content"), list) and role != "user")
            kind = "opaque" if opaque else "text"
            extra = sum(
                openai_image_tokens(
                    None,
                    str((b.get("image_url") or {}).get("detail", "auto"))
                    if isinstance(b.get("image_url"), dict)
                    else "auto",
                )
                for b in images
            )
            calls = m.get("tool_calls") or []
            self.add(
                text,
                i,
                0,
                m,
                id=mid,
                role=role,
                kind=kind,
                group=group,
                overhead=overhead + extra,
                new_turn=role == "user",
                priority=USER_PRIORITY if role == "user" else Priority.NORMAL,
            )
            for j, call in enumerate(calls):
                if not isinstance(call, dict):
                    raise InputFormatError(f"message {i}: tool call {j} is not an object")
                fn = call.get("function") or {}
                call_id = str(call.get("id") or f"{mid}.{j}")
                args = fn.get("arguments")
                args_text = args if isinstance(args, str) else compact_json(args)
                self.add(
                    args_text,
                    i,
                    j + 1,
                    call,
                    id=f"{mid}.call{j}",
                    role="assistant",
                    kind="tool_call",
                    group=group,
                    overhead=0,
                    new_turn=False,
                    payload={"call_id": call_id, "name": str(fn.get("name", "tool"))},
                )
                self.calls[call_id] = group

    def anthropic(self, messages: Sequence[dict[str, Any]]) -> None:
        for i, m in enumerate(messages):
            role = m["role"]
            content = m.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            blocks = blocks or []
            group = f"m{i}"
            has_text = any(isinstance(b, dict) and b.get("type") == "text" for b in blocks)
            first = True
            new_turn = role == "user" and has_text
            if not blocks:
                self.add(
                    "",
                    i,
                    0,
                    m,
                    id=f"m{i}.0",
                    role=role,
                    kind="text",
                    group=group,
                    overhead=3,
                    new_turn=new_turn,
                )
            for j, b in enumerate(blocks):
                if not isinstance(b, dict):
                    raise InputFormatError(f"message {i}: block {j} is not an object")
                overhead = 3 if first else 0
                bid = f"m{i}.{j}"
                btype = b.get("type")
                if btype == "text":
                    self.add(
                        str(b.get("text", "")),
                        i,
                        j,
                        b,
                        id=bid,
                        role=role,
                        kind="text",
                        group=group,
                        overhead=overhead,
                        new_turn=new_turn and first,
                        priority=USER_PRIORITY if role == "user" else Priority.NORMAL,
                    )
                elif btype in ("tool_use", "server_tool_use"):
                    call_id = str(b.get("id", bid))
                    self.add(
                        compact_json(b.get("input")),
                        i,
                        j,
                        b,
                        id=bid,
                        role="assistant",
                        kind="tool_call",
                        group=group,
                        overhead=overhead,
                        new_turn=False,
                        payload={"call_id": call_id, "name": str(b.get("name", "tool"))},
                    )
                    self.calls[call_id] = group
                elif btype == "tool_result":
                    call_id = str(b.get("tool_use_id", ""))
                    if call_id not in self.calls:
                        raise InputFormatError(
                            f"message {i}: tool_result for {call_id!r}, which no earlier "
                            "assistant message called"
                        )
                    text, images = flatten_text(b.get("content"))
                    extra = sum(anthropic_image_tokens(None) for _ in images)
                    self.add(
                        text,
                        i,
                        j,
                        b,
                        id=bid,
                        role="tool",
                        kind="opaque" if images else "tool_result",
                        group=self.calls.pop(call_id),
                        overhead=overhead + extra,
                        new_turn=False,
                        payload={"call_id": call_id},
                    )
                else:
                    tokens = anthropic_image_tokens(None) if btype == "image" else 0
                    text = "" if btype == "image" else flatten_text([b])[0]
                    self.add(
                        text,
                        i,
                        j,
                        b,
                        id=bid,
                        role=role,
                        kind="opaque",
                        group=group,
                        overhead=overhead + tokens,
                        new_turn=False,
                    )
                first = False


def _reader_tokens(reference: ContextSession, system: bool) -> dict[str, int]:
    """The tokens the profiler's reader counts for each memory entry, by the entry's
    id (framing, images, dropped thinking blocks included), so the plan adds up to what
    the reader measures; ``system`` when the memory has a ``system`` entry (Anthropic's
    top-level prompt). Keys no entry has are the format's fixed costs."""
    by_entry: dict[str, int] = {}
    for item in reference.items.values():
        key = item.id
        if key.startswith("tool:"):
            key = ":".join(key.split(":")[:2])
        elif system and key.startswith("system"):
            key = "system"
        elif ".img" in key:
            key = key.split(".img")[0]
        by_entry[key] = by_entry.get(key, 0) + item.tokens
    return by_entry


class _Shown(NamedTuple):
    """An entry as the fitted window shows it (a live entry, rewritten or not, or a
    summary the plan adds)."""

    seq: int
    kind: str
    content: str
    payload: dict[str, Any]
    summarized: bool


def _copy(value: Any) -> Any:
    """A deep copy of JSON-like data (what a message is), far cheaper than
    :func:`copy.deepcopy`; anything else goes to ``deepcopy``."""
    if isinstance(value, str) or value is None or type(value) in (int, float, bool):
        return value
    if type(value) is dict:
        return {k: _copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) for v in value]
    return copy.deepcopy(value)


def _view(memory: ContextMemory, plan: Plan | None = None) -> list[_Shown]:
    """The window in order as it is, or as it will be once ``plan`` is applied
    (the order :meth:`ContextMemory.ordered` gives after :meth:`~ContextMemory.apply`)."""
    levels = plan.levels if plan is not None else {}
    rewritten = plan.rewritten if plan is not None else {}
    shown: list[tuple[int, bool, _Shown]] = []
    for e in memory.entries.values():
        if levels.get(e.id, VERBATIM) >= GROUPED:  # grouped, cold or evicted: gone
            continue
        text = rewritten.get(e.id)
        view = _Shown(
            e.seq,
            e.kind,
            e.content if text is None else text[0],
            e.payload,
            e.summarized or text is not None,
        )
        shown.append((e.seq, e.kind != "summary", view))
    for summary in plan.summaries if plan is not None else ():
        seq = summary.anchor if summary.anchor >= 0 else 0
        shown.append((seq, False, _Shown(seq, "summary", summary.content, {}, True)))
    shown.sort(key=operator.itemgetter(0, 1))
    return [row[2] for row in shown]


def _render_openai(
    shown: list[_Shown], original: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[int | None]]:
    """The fitted list, and for each message the index of the original it copies
    unchanged (every entry of it kept verbatim), else ``None``."""
    out: list[dict[str, Any]] = []
    sources: list[int | None] = []
    parts = collections.Counter(
        int(e.payload["msg"])
        for e in shown
        if e.kind not in ("tool_definition", "overhead", "summary")
    )
    whole = {i: len(m.get("tool_calls") or []) + 1 for i, m in enumerate(original)}
    rendered: collections.Counter[int] = collections.Counter()
    current: int | None = None
    for entry in shown:
        if entry.kind in ("tool_definition", "overhead"):
            continue
        if entry.kind == "summary":
            out.append({"role": "user", "content": entry.content})
            sources.append(None)
            current = None
            continue
        index = int(entry.payload["msg"])
        src = original[index]
        if entry.kind == "tool_call":
            call_no = int(entry.payload["block"]) - 1
            if current != index:  # calls whose text entry was not kept alone
                out.append({k: v for k, v in src.items() if k != "tool_calls"})
                out[-1]["content"] = None
                sources.append(None)
                current = index
            out[-1].setdefault("tool_calls", []).append(_copy(src["tool_calls"][call_no]))
            rendered[index] += 1
            continue
        message = {k: _copy(v) for k, v in src.items() if k != "tool_calls"}
        changed = entry.kind in ("text", "tool_result") and entry.summarized
        if changed:
            message["content"] = entry.content
        if src.get("role") == "assistant" and src.get("content") is None and not entry.content:
            message["content"] = None
        out.append(message)
        rendered[index] += 1
        sources.append(None if changed else index)
        current = index
    for k, source in enumerate(sources):
        # a message that lost some of its calls is no longer a copy of its original
        if source is not None and not parts[source] == rendered[source] == whole[source]:
            sources[k] = None
    return out, sources


def _message_tokens(reference: ContextSession) -> dict[int, int]:
    """Tokens the reader gave each message of the original list (by its index)."""
    out: dict[int, int] = collections.defaultdict(int)
    for item in reference.items.values():
        key = item.id
        if key.startswith("m") and key[1:2].isdigit():
            digits = key[1:].split(".", 1)[0]
            if digits.isdigit():
                out[int(digits)] += item.tokens
    return out


def _fresh_counts(messages: list[Any], model: str | None, counter: Any) -> list[int]:
    """Tokens of each of these OpenAI messages, read alone (no system, no tools)."""
    session = read_request(
        messages,
        OPENAI,
        model=model,
        system=None,
        tools=None,
        counter=counter,
        track_leaks=False,
    )
    counts = _message_tokens(session)
    return [counts[index] for index in range(len(messages))]


def _render_anthropic(
    shown: list[_Shown], original: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    current: int | None = None
    for entry in shown:
        if entry.kind in ("system", "tool_definition", "overhead"):
            continue
        if entry.kind == "summary":
            out.append({"role": "user", "content": [{"type": "text", "text": entry.content}]})
            current = None
            continue
        index, block = int(entry.payload["msg"]), int(entry.payload["block"])
        src = original[index]
        content = src.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        if current != index:
            out.append({**{k: v for k, v in src.items() if k != "content"}, "content": []})
            current = index
        if not blocks:
            continue
        b = _copy(blocks[block])
        if entry.summarized:
            if b.get("type") == "text":
                b["text"] = entry.content
            elif b.get("type") == "tool_result":
                b["content"] = entry.content
        out[-1]["content"].append(b)
    return _normalise_anthropic(out)


def _normalise_anthropic(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge same-role neighbours (tool results first) and start with a user turn."""
    merged: list[dict[str, Any]] = []
    for m in messages:
        if merged and merged[-1]["role"] == m["role"]:
            merged[-1]["content"].extend(m["content"])
        else:
            merged.append(m)
    for m in merged:
        if m["role"] == "user":
            results = [b for b in m["content"] if b.get("type") == "tool_result"]
            if results:
                m["content"] = results + [b for b in m["content"] if b.get("type") != "tool_result"]
        if not m["content"]:
            m["content"] = [{"type": "text", "text": "[memlens: content archived]"}]
    if merged and merged[0]["role"] != "user":
        merged.insert(
            0,
            {
                "role": "user",
                "content": [{"type": "text", "text": "[memlens: earlier turns archived]"}],
            },
        )
    return merged


def read_request(
    messages: Sequence[dict[str, Any]],
    fmt: str,
    *,
    model: str | None,
    system: Any,
    tools: Any,
    counter: Any = None,
    track_leaks: bool = True,
) -> ContextSession:
    """A request read by the profiler's own reader for its format (counts included;
    ``track_leaks=False`` when only the counts are wanted: the reader then keeps none
    of the bookkeeping leak diagnoses use)."""
    session = ContextSession(model, counter=counter, format=fmt, track_leaks=track_leaks)
    reader = OpenAIChatReader(session) if fmt == OPENAI else AnthropicMessagesReader(session)
    document: dict[str, Any] = {"messages": list(messages)}
    if system is not None:
        document["system"] = system
    if tools:
        document["tools"] = tools
    reader.read(document, source="fit")
    return session


def prime_counts(messages: Sequence[Any], fmt: str, counter: Any) -> None:
    """Count the texts the reader will count (message texts, text blocks, tool results)
    in one tight batch first: the same exact counts, found faster than one by one
    between the reader's bookkeeping, and the reader's own counts are then cache hits.
    Tool results are counted in blocks (:meth:`CachedCounter.count_in_blocks`)."""
    texts: list[str] = []
    outputs: list[str] = []
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if fmt == OPENAI or isinstance(content, str):
            text = flatten_text(content)[0] if not isinstance(content, str) else content
            (outputs if m.get("role") in ("tool", "function") else texts).append(text)
            continue
        for b in content if isinstance(content, list) else ():
            if not isinstance(b, dict):
                continue
            if b.get("type") == "text":
                texts.append(str(b.get("text", "")))
            elif b.get("type") == "tool_result":
                outputs.append(flatten_text(b.get("content"))[0])
    counter.prime(texts)
    # tool output is what gets trimmed to its first and last lines: counted in blocks,
    # a trim's count comes from the blocks it keeps
    counter.count_in_blocks(outputs)


def measure(
    messages: Sequence[dict[str, Any]],
    fmt: str,
    *,
    model: str | None,
    system: Any,
    tools: Any,
    counter: Any,
) -> int:
    """Tokens of a request by the profiler's own reader for its format."""
    return read_request(
        messages, fmt, model=model, system=system, tools=tools, counter=counter, track_leaks=False
    ).window_tokens


#: ``json.dumps(m, sort_keys=True, ensure_ascii=False, default=str)``, built once
_SORTED_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str)


def _measure_openai(
    fitted: list[dict[str, Any]],
    sources: list[int | None],
    per_message: dict[int, int],
    *,
    model: str | None,
    tools: Any,
    counter: Any,
    cache: dict[bytes, int] | None = None,
) -> int:
    """Tokens of a fitted OpenAI list by the profiler's reader, exactly as
    :func:`measure` gives them: the reader counts each OpenAI message on its own
    (framing, text, calls, images), so a message copied unchanged costs what it cost in
    the original request, and a rewritten one is read once (``cache`` keeps its count
    by its JSON's digest for the next fit of the same list); the tools and the reply
    priming are the count of an empty list. Without a ``cache`` (a one-off fit) the
    rewritten messages are read as they are, with no JSON digest to key them by."""
    fresh = [m for m, source in zip(fitted, sources, strict=True) if source is None]
    copied = sum(per_message[source] for source in sources if source is not None)
    if cache is None:
        read = sum(_fresh_counts(fresh, model, counter)) if fresh else 0
        fixed = measure([], OPENAI, model=model, system=None, tools=tools, counter=counter)
        return copied + fixed + read
    if len(cache) >= 65_536:  # a fitter reused for very many budgets
        cache.clear()
    keys = [digest_text(_SORTED_JSON.encode(m)) for m in fresh]
    todo = {key: m for key, m in zip(keys, fresh, strict=True) if key not in cache}
    if todo:
        counts = _fresh_counts(list(todo.values()), model, counter)
        for index, key in enumerate(todo):
            cache[key] = counts[index]
    if b"" not in cache:  # the request's fixed part: tools, reply priming
        cache[b""] = measure([], OPENAI, model=model, system=None, tools=tools, counter=counter)
    return copied + cache[b""] + sum(cache[key] for key in keys)


class RequestFitter:
    """A message list read and counted once, then fitted to any number of budgets.

    Each :meth:`fit` gives exactly what :func:`fit_messages` gives for that budget:
    the list is read by the profiler's reader and turned into a memory once, and one
    planner (whose summaries depend only on the items, not the budget) plans every
    fit; the memory a result reports is built only when asked for. Previews at several
    budgets and the benchmark's random budgets use this.
    """

    def __init__(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        model: str | None = None,
        tools: Sequence[dict[str, Any]] | None = None,
        system: Any = None,
        format: str | None = None,
        keep_last_turns: int = 2,
        pinned: Sequence[int] = (),
        memory_options: dict[str, Any] | None = None,
    ) -> None:
        fmt = format or detect(messages, system)
        if fmt not in FORMATS:
            raise ConfigError(
                f"unknown message format {fmt!r}: expected one of {', '.join(FORMATS)}"
            )
        _check_messages(messages, fmt)
        self.info = get_model(model) if model else None
        from memlens.context.tokens import get_counter

        self.counter = get_counter(self.info.encoding if self.info else "cl100k_base")
        self.messages, self.format, self.model = messages, fmt, model
        self.system, self.tools = system, tools
        self.keep_last_turns, self.pinned = keep_last_turns, tuple(pinned)
        self.memory_options = dict(memory_options or {})
        with gc_paused(), digest_memo():
            prime_counts(messages, fmt, self.counter)
            self.reference = read_request(
                messages,
                fmt,
                model=model,
                system=system,
                tools=tools,
                counter=self.counter,
                track_leaks=False,
            )
        self.tokens_before = self.reference.window_tokens
        self._per_message = _message_tokens(self.reference) if fmt == OPENAI else {}
        self._template: ContextMemory | None = None
        self._planner: Planner | None = None
        self._fresh_tokens: dict[bytes, int] = {}

    def new_memory(self, budget: int) -> ContextMemory:
        """A fresh memory holding the list (what every fit starts from)."""
        return _memory(
            self.messages,
            self.format,
            budget,
            self.model,
            self.system,
            self.tools,
            self.counter,
            self.keep_last_turns,
            self.pinned,
            dict(self.memory_options),
            self.reference,
        )

    def _parse(self, budget: int | str) -> int:
        tokens = parse_budget(budget)
        assert tokens is not None
        info = self.info
        if info is not None and tokens > info.context_window:
            raise ConfigError(
                f"budget {tokens:,} is larger than {info.name}'s context window "
                f"({info.context_window:,} tokens)"
            )
        return tokens

    def fit(self, budget: int | str, *, keep_memory: bool = False) -> FitResult:
        """The list fitted into ``budget`` tokens (see :func:`fit_messages`).

        ``keep_memory`` hands the fitter's own memory to the result (the plan applied
        to it, eagerly) and ends the fitter's reuse; otherwise ``result.memory`` is
        built from a fresh copy when first used.
        """
        # the same texts are digested many times over; the collector would traverse
        # every new entry again and again (see gcpause)
        with gc_paused(), digest_memo():
            return self._fit(budget, keep_memory)

    def _fit(self, budget: int | str, keep_memory: bool) -> FitResult:
        tokens = self._parse(budget)
        if self._template is None:
            self._template = self.new_memory(tokens)
        memory = self._template
        if self._planner is None:
            self._planner = memory.planner()
        target = tokens
        for attempt in range(1, 7):
            plan = self._planner.solve(min(target, tokens))
            if not plan.fits:
                raise BudgetError(memory._why_not(plan))
            shown = _view(memory, plan)
            if self.format == OPENAI:
                fitted, sources = _render_openai(shown, self.messages)
                after = _measure_openai(
                    fitted,
                    sources,
                    self._per_message,
                    model=self.model,
                    tools=self.tools,
                    counter=self.counter,
                    # a fit that ends the fitter's reuse keeps nothing for later fits
                    cache=None if keep_memory else self._fresh_tokens,
                )
            else:
                fitted = _render_anthropic(shown, self.messages)
                after = measure(
                    fitted,
                    self.format,
                    model=self.model,
                    system=self.system,
                    tools=self.tools,
                    counter=self.counter,
                )
            if after <= tokens:
                break
            # the reader's framing can differ by a token or two: tighten and redo
            target -= (after - tokens) * attempt
            if target <= 0:
                break
        if after > tokens:
            raise BudgetError(
                f"cannot fit the request into {tokens:,} tokens: the fitted request still "
                f"measures {after:,} (pinned messages, system prompt and tools alone need "
                f"{memory.pinned_tokens:,})"
            )
        source: ContextMemory | Callable[[], ContextMemory]
        if keep_memory:
            report = memory.carry_out(plan)
            source = memory
            self._template = self._planner = None
        else:
            report = memory.report_of(plan)

            def source() -> ContextMemory:
                with gc_paused():
                    fresh = self.new_memory(tokens)
                    fresh.carry_out(fresh.planner().solve(plan.budget))
                return fresh

        return FitResult(
            messages=fitted,
            format=self.format,
            report=report,
            tokens_before=self.tokens_before,
            tokens_after=after,
            budget=tokens,
            system=copy.deepcopy(self.system),
            tools=list(self.tools) if self.tools else None,
            source=source,
        )


def fit_messages(
    messages: Sequence[dict[str, Any]],
    *,
    budget: int | str,
    model: str | None = None,
    tools: Sequence[dict[str, Any]] | None = None,
    system: Any = None,
    format: str | None = None,
    keep_last_turns: int = 2,
    pinned: Sequence[int] = (),
    memory_options: dict[str, Any] | None = None,
) -> FitResult:
    """Fit ``messages`` (OpenAI chat or Anthropic Messages) into ``budget`` tokens.

    ``system`` is Anthropic's top-level system prompt (OpenAI keeps it in the list);
    ``tools`` count toward the budget and are never changed; ``pinned`` lists message
    indexes never to touch. The input is never modified. Raises
    :class:`~memlens.core.errors.InputFormatError` for a malformed list,
    :class:`~memlens.core.errors.ConfigError` for an unknown model or bad budget, and
    :class:`BudgetError` when what must be kept does not fit. To fit one list to
    several budgets, :class:`RequestFitter` reads it only once.
    """
    with gc_paused(), digest_memo():
        fitter = RequestFitter(
            messages,
            model=model,
            tools=tools,
            system=system,
            format=format,
            keep_last_turns=keep_last_turns,
            pinned=pinned,
            memory_options=memory_options,
        )
        return fitter.fit(budget, keep_memory=True)


def _memory(
    messages: Sequence[dict[str, Any]],
    fmt: str,
    budget: int,
    model: str | None,
    system: Any,
    tools: Any,
    counter: Any,
    keep_last_turns: int,
    pinned: Sequence[int],
    options: dict[str, Any],
    reference: ContextSession,
) -> ContextMemory:
    session = ContextSession(model, counter=counter, keep_content=True, format=fmt)
    options.setdefault("message_overhead", 4 if fmt == OPENAI else 3)  # a summary's framing
    memory = ContextMemory(
        budget, model=model, session=session, keep_last_turns=keep_last_turns, **options
    )
    tokens = _reader_tokens(reference, system is not None)
    builder = _Builder(memory, fmt, tokens)
    if system is not None:
        text = system if isinstance(system, str) else flatten_text(system)[0]
        memory.add_counted(
            text,
            tokens.get("system", 0),
            id="system",
            layer=Layer.SYSTEM_PROMPT,
            role="system",
            kind="system",
            priority=Priority.NORMAL,
            pinned=True,
            group="",
            overhead=0,
            payload={"msg": -1, "block": 0},
            new_turn=False,
        )
    for index, tool in enumerate(tools or []):
        memory.add_counted(
            json.dumps(tool, ensure_ascii=False, separators=(",", ":")),
            tokens.get(f"tool:{index}", 0),
            id=f"tool:{index}",
            layer=Layer.TOOL_DEFINITIONS,
            role="",
            kind="tool_definition",
            priority=Priority.NORMAL,
            pinned=True,
            group="",
            overhead=8 + (346 if fmt == ANTHROPIC and index == 0 else 12 if index == 0 else 0),
            payload={"msg": -1, "block": index},
            new_turn=False,
        )
    if fmt == OPENAI:
        builder.openai(messages)
    else:
        builder.anthropic(messages)
    spare = sum(n for key, n in tokens.items() if key not in memory.entries)
    if spare:  # reply priming and the like: fixed costs of the format
        memory.add(
            "",
            id="format-overhead",
            layer=Layer.TOOL_DEFINITIONS,
            kind="overhead",
            pinned=True,
            overhead=spare,
            payload={"msg": -1, "block": 0},
        )
    for index in pinned:
        for entry in memory.entries.values():
            if entry.payload.get("msg") == index:
                entry.pinned = True
                entry.priority = Priority.CRITICAL
    return memory


__all__ = [
    "ANTHROPIC",
    "OPENAI",
    "BudgetError",
    "FitResult",
    "RequestFitter",
    "fit_messages",
    "measure",
]


def memory_from_messages(
    messages: Sequence[dict[str, Any]],
    *,
    budget: int | str | None = None,
    model: str | None = None,
    tools: Sequence[dict[str, Any]] | None = None,
    system: Any = None,
    format: str | None = None,
    keep_last_turns: int = 2,
    **options: Any,
) -> ContextMemory:
    """A :class:`ContextMemory` holding a message list (groups, pins and counts as
    :func:`fit_messages` sets them), to manage it over time instead of fitting once."""
    fmt = format or detect(messages, system)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown message format {fmt!r}: expected one of {', '.join(FORMATS)}")
    _check_messages(messages, fmt)
    info = get_model(model) if model else None
    from memlens.context.tokens import get_counter

    counter = get_counter(info.encoding if info else "cl100k_base")
    with gc_paused():
        prime_counts(messages, fmt, counter)
        reference = read_request(
            messages,
            fmt,
            model=model,
            system=system,
            tools=tools,
            counter=counter,
            track_leaks=False,
        )
        tokens = parse_budget(budget) or (info.context_window if info else None)
        return _memory(
            messages,
            fmt,
            tokens or max(1, reference.window_tokens),
            model,
            system,
            tools,
            counter,
            keep_last_turns,
            (),
            dict(options),
            reference,
        )


def memory_from_file(path: Any, **kw: Any) -> ContextMemory:
    """A :class:`ContextMemory` from any file the profiler reads (a Claude Code
    transcript, an OpenAI chat or Anthropic Messages request)."""
    from memlens.context.memory.requests import load_request

    fmt, request = load_request(path)
    kw.setdefault("model", request.get("model") if isinstance(request.get("model"), str) else None)
    return memory_from_messages(
        request["messages"],
        tools=request.get("tools"),
        system=request.get("system"),
        format=fmt,
        **kw,
    )
