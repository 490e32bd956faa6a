"""Claude Code session transcripts (JSON Lines, one file per session).

Each line is one record: ``user`` and ``assistant`` messages, ``system`` events (a
``compact_boundary`` among them), ``summary`` titles and file snapshots. What matters
for the context window, and how this reader treats it:

* An API response spans several lines (one per content block) that share the message
  id and request id; blocks are de-duplicated by content and the last usage wins.
* ``tool_result`` blocks are counted from the message, never from ``toolUseResult``
  (that copy is for the UI and is not sent to the model).
* A ``compact_boundary`` drops the window; the ``isCompactSummary`` message that
  follows becomes long-term memory (``compressed``).
* ``isSidechain`` lines, and sub-agent files read by the profiler, feed one
  sub-session per agent.
* The system prompt, tool definitions and memory files are not written to the
  transcript: they are inferred from the first API call's usage (reported input
  minus what the transcript accounts for) and shown as one labelled item.
* Thinking blocks of earlier turns are dropped when a new turn starts, as the API
  does.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

from memlens.context.formats import CLAUDE_CODE
from memlens.context.images import anthropic_image_tokens, size_from_base64
from memlens.context.layers import Layer
from memlens.context.readers import jsontext
from memlens.context.readers.common import (
    as_dict,
    classify_tool,
    compact_json,
    flatten_text,
    memory_file_path,
    parse_timestamp,
)
from memlens.context.session import ContextSession
from memlens.context.tokens import digest_text

FORMAT = "claude-code"
INFERRED_ID = "inferred:system+tools"


def looks_like(record: Any) -> bool:
    """True when a parsed line looks like a Claude Code transcript record."""
    if not isinstance(record, dict):
        return False
    kind = record.get("type")
    if kind in ("user", "assistant", "system") and (
        "sessionId" in record or "uuid" in record or "parentUuid" in record
    ):
        return True
    return (
        kind in ("summary", "file-history-snapshot", "queue-operation") and "messages" not in record
    )


class ClaudeCodeReader:
    """Feeds Claude Code transcript lines into a :class:`ContextSession`."""

    format = FORMAT

    def __init__(self, session: ContextSession, *, route_sidechains: bool = True) -> None:
        self.session = session
        self.route_sidechains = route_sidechains
        self._pending: dict[str, Any] = {}
        self._calls: OrderedDict[str, set[bytes]] = OrderedDict()
        self._thinking: list[tuple[int, str]] = []
        self._inferred = False
        self._subreaders: dict[str, ClaudeCodeReader] = {}
        self._last_pre_tokens: int | None = None

    # ---------------------------------------------------------------- entry points
    def feed_line(self, line: str, lineno: int) -> None:
        """Parse and apply one line; malformed lines become warnings."""
        text = line.strip()
        if not text:
            return
        self.session.lines_read += 1
        try:
            record = jsontext.loads(text)
        except ValueError:
            self.session.warn(f"line {lineno}: malformed JSON, skipped")
            return
        if not isinstance(record, dict):
            self.session.warn(f"line {lineno}: not a JSON object, skipped")
            return
        self.feed(record, lineno)

    def texts(self, record: dict[str, Any]) -> list[str]:
        """Texts this reader will count for ``record`` (see :func:`record_texts`)."""
        return record_texts(record)

    def feed_parsed(self, record: dict[str, Any], lineno: int) -> None:
        """Apply one line already parsed by the caller (a batch reader)."""
        self.session.lines_read += 1
        self.feed(record, lineno)

    def feed(self, record: dict[str, Any], lineno: int) -> None:
        """Apply one parsed record."""
        if self.route_sidechains and record.get("isSidechain"):
            name = str(record.get("agentId") or "sidechain")
            sub = self._subreaders.get(name)
            if sub is None:
                sub = ClaudeCodeReader(self.session.agent(name), route_sidechains=False)
                self._subreaders[name] = sub
            sub.feed(record, lineno)
            return
        self.session.records += 1
        kind = record.get("type")
        when = parse_timestamp(record.get("timestamp"))
        try:
            if kind == "user":
                self._user(record, lineno, when)
            elif kind == "assistant":
                self._assistant(record, lineno, when)
            elif kind == "system" and record.get("subtype") == "compact_boundary":
                meta = as_dict(record.get("compactMetadata"))
                pre = meta.get("preTokens")
                self._last_pre_tokens = int(pre) if isinstance(pre, (int, float)) else None
                self.session.compact(
                    trigger=str(meta.get("trigger") or "manual"),
                    pre_tokens=self._last_pre_tokens,
                    timestamp=when,
                )
                self._thinking.clear()
                if meta.get("trigger") == "auto" and self._last_pre_tokens:
                    self.session.auto_compact_tokens = self._last_pre_tokens
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            self.session.warn(f"line {lineno}: unexpected {kind} record shape ({exc}), skipped")

    # ---------------------------------------------------------------- records
    def _user(self, record: dict[str, Any], lineno: int, when: datetime | None) -> None:
        message = record.get("message")
        if not isinstance(message, dict):
            raise ValueError("user record without a message")
        content = message.get("content")
        uid = str(record.get("uuid") or f"L{lineno}")
        s = self.session
        if record.get("isCompactSummary"):
            text, _ = flatten_text(content)
            item = s.add_long_term(
                "compressed",
                text,
                id=f"{uid}#summary",
                created=when,
                label="compaction summary",
                kind="summary",
                source=f"line {lineno}",
            )
            if s.compactions:
                event = s.compactions[-1]
                event.summary_tokens = item.tokens
                original = event.pre_tokens or event.dropped_tokens
                if original:
                    s.record_compression(original, item.tokens)
            return
        blocks = [content] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            raise ValueError("user content is neither text nor a block list")
        meta = bool(record.get("isMeta"))
        overhead = CLAUDE_CODE.per_message
        started = False
        for index, block in enumerate(blocks):
            bid = f"{uid}#{index}"
            source = f"line {lineno}"
            if isinstance(block, str):
                block = {"type": "text", "text": block}
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "tool_result":
                self._tool_result(block, bid, source, when, overhead)
            elif btype == "image":
                self._image(block, bid, source, when, Layer.CONVERSATION, "", overhead)
            elif btype == "text":
                text = str(block.get("text", ""))
                memory = memory_file_path(text)
                if memory:
                    s.add_memory_file(
                        memory, text, id=bid, created=when, source=source, overhead=overhead
                    )
                else:
                    real_prompt = (
                        not meta
                        and "<system-reminder>" not in text[:40]
                        and not text.startswith(("<local-command-stdout>", "Caveat:"))
                    )
                    if real_prompt and not started:
                        self._start_turn(when, text)
                        started = True
                    s.add_message(
                        "user",
                        text,
                        new_turn=False,
                        id=bid,
                        created=when,
                        source=source,
                        overhead=overhead,
                    )
            else:
                s.add(
                    Layer.CONVERSATION,
                    compact_json(block),
                    id=bid,
                    created=when,
                    source=source,
                    kind=str(btype),
                    overhead=overhead,
                )
            overhead = 0

    def _start_turn(self, when: datetime | None, text: str) -> None:
        s = self.session
        # The API drops thinking blocks of earlier turns from the context.
        for _, item_id in self._thinking:
            if item_id in s.items:
                s.remove(item_id)
        self._thinking.clear()
        s.new_turn(when, label=" ".join(text.split())[:80])

    def _assistant(self, record: dict[str, Any], lineno: int, when: datetime | None) -> None:
        message = record.get("message")
        if not isinstance(message, dict):
            raise ValueError("assistant record without a message")
        s = self.session
        call_id = str(message.get("id") or record.get("requestId") or record.get("uuid") or lineno)
        model = message.get("model")
        if isinstance(model, str) and model and not model.startswith("<"):
            s.model = s.model or model
            s.seen_model = model
        seen = self._calls.get(call_id)
        first = seen is None
        if seen is None:
            seen = set()
            self._calls[call_id] = seen
            while len(self._calls) > 32:
                self._calls.popitem(last=False)
        usage = message.get("usage")
        if isinstance(usage, dict) and not record.get("isApiErrorMessage"):
            estimated = s.window_tokens
            call = s.record_call(
                call_id,
                input_tokens=_int(usage.get("input_tokens")),
                output_tokens=_int(usage.get("output_tokens")),
                cache_read_tokens=_int(usage.get("cache_read_input_tokens")),
                cache_write_tokens=_int(usage.get("cache_creation_input_tokens")),
                timestamp=when,
                estimated_input=estimated if first else None,
            )
            if not self._inferred and call.context_tokens > 0:
                self._inferred = True
                hidden = call.context_tokens - call.estimated_input
                if hidden > 0:
                    s.add(
                        Layer.SYSTEM_PROMPT,
                        tokens=hidden,
                        id=INFERRED_ID,
                        kind="inferred",
                        sublayer="inferred from usage",
                        label="system prompt, tools and memory (not in transcript; from API usage)",
                        source=f"line {lineno} usage",
                        created=when,
                    )
                    s.hidden_overhead = hidden
                    call.estimated_input += hidden
        content = message.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if not isinstance(content, list):
            return
        overhead = CLAUDE_CODE.per_message if first else 0
        for block in content:
            if not isinstance(block, dict):
                continue
            digest = digest_text(compact_json(block))
            if digest in seen:
                continue
            seen.add(digest)
            bid = f"{call_id}#{len(seen)}"
            self._assistant_block(block, bid, f"line {lineno}", when, overhead)
            overhead = 0

    def _assistant_block(
        self, block: dict[str, Any], bid: str, source: str, when: datetime | None, overhead: int
    ) -> None:
        s = self.session
        btype = block.get("type")
        if btype == "text":
            s.add_message(
                "assistant",
                str(block.get("text", "")),
                new_turn=False,
                id=bid,
                created=when,
                source=source,
                overhead=overhead,
            )
        elif btype in ("thinking", "redacted_thinking"):
            text = str(block.get("thinking") or block.get("data") or "")
            item = s.add(
                Layer.CONVERSATION,
                text,
                id=bid,
                kind="thinking",
                created=when,
                source=source,
                label="thinking",
                overhead=overhead,
            )
            self._thinking.append((s.current_turn, item.id))
        elif btype in ("tool_use", "server_tool_use"):
            name = str(block.get("name", "tool"))
            args = block.get("input")
            cls = classify_tool(name, args)
            self._pending[str(block.get("id", bid))] = (name, args, cls)
            if len(self._pending) > 512:
                self._pending.pop(next(iter(self._pending)))
            payload = compact_json({"name": name, "input": args})
            if cls.layer is Layer.AGENT_STATES:
                s.add(
                    Layer.AGENT_STATES,
                    payload,
                    id=bid,
                    sublayer=cls.sublayer,
                    kind="tool_use",
                    label=f"{cls.label} (call)",
                    created=when,
                    source=source,
                    agent=cls.sublayer,
                    overhead=overhead,
                )
            elif cls.sublayer in ("files", "tasks") and cls.observe == "" or name == "TodoWrite":
                s.add(
                    Layer.WORKING_MEMORY,
                    payload,
                    id=bid,
                    sublayer=cls.sublayer,
                    kind="tool_use",
                    label=f"{cls.label} (call)",
                    key=cls.key,
                    created=when,
                    source=source,
                    overhead=overhead,
                )
            else:
                s.add(
                    Layer.CONVERSATION,
                    payload,
                    id=bid,
                    kind="tool_use",
                    label=f"call {cls.label}",
                    created=when,
                    source=source,
                    overhead=overhead,
                )
        else:
            s.add(
                Layer.CONVERSATION,
                compact_json(block),
                id=bid,
                kind=str(btype),
                created=when,
                source=source,
                overhead=overhead,
            )

    def _tool_result(
        self, block: dict[str, Any], bid: str, source: str, when: datetime | None, overhead: int
    ) -> None:
        s = self.session
        pending = self._pending.pop(str(block.get("tool_use_id", "")), None)
        text, images = flatten_text(block.get("content"))
        if pending is None:
            cls = classify_tool("unknown", {})
            name = "tool"
        else:
            name, _, cls = pending
        layer, sublayer = cls.layer, cls.sublayer
        if block.get("is_error"):
            layer, sublayer = Layer.WORKING_MEMORY, "debug_info"
        label = f"{cls.label} → result" if pending else "tool result"
        item = s.add(
            layer,
            text,
            id=bid,
            sublayer=sublayer,
            kind="tool_result",
            label=label,
            key=cls.key,
            created=when,
            source=source,
            agent=cls.sublayer if layer is Layer.AGENT_STATES else "",
            overhead=overhead,
        )
        if cls.observe and not block.get("is_error") and layer is not Layer.AGENT_STATES:
            s.observe(item, cls.observe)
        for index, image in enumerate(images):
            self._image(image, f"{bid}.img{index}", source, when, layer, sublayer, 0)
        del name

    def _image(
        self,
        block: dict[str, Any],
        bid: str,
        source: str,
        when: datetime | None,
        layer: Layer,
        sublayer: str,
        overhead: int,
    ) -> None:
        src = as_dict(block.get("source"))
        data = src.get("data") if isinstance(src, dict) else None
        size = size_from_base64(data) if isinstance(data, str) else None
        tokens = anthropic_image_tokens(size)
        label = f"image {size[0]}×{size[1]}" if size else "image (size unknown, estimated)"
        # identity only: hashing the head is enough, tokenizing base64 would be waste
        digest = digest_text(data[:4096]) if isinstance(data, str) else None
        self.session.add(
            layer,
            tokens=tokens,
            id=bid,
            sublayer=sublayer,
            kind="image",
            label=label,
            created=when,
            source=source,
            overhead=overhead,
            digest=digest,
        )


def record_texts(record: dict[str, Any]) -> list[str]:
    """The texts :class:`ClaudeCodeReader` will count for ``record``, in advance.

    The profiler counts these for a chunk of lines in one batch before feeding the
    lines. It must mirror what the reader passes to ``session.add``; a text it misses
    only costs a one-by-one count later, never a different count.
    """
    if record.get("type") not in ("user", "assistant"):
        return []
    message = record.get("message")
    if not isinstance(message, dict):
        return []
    content = message.get("content")
    if record.get("isCompactSummary"):
        return [flatten_text(content)[0]]
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    texts: list[str] = []
    user = record.get("type") == "user"
    for block in content:
        if isinstance(block, str):
            texts.append(block)
            continue
        if not isinstance(block, dict):
            continue
        btype = block.get("type")
        if btype == "text":
            texts.append(str(block.get("text", "")))
        elif btype == "image":
            continue
        elif user and btype == "tool_result":
            texts.append(flatten_text(block.get("content"))[0])
        elif not user and btype in ("thinking", "redacted_thinking"):
            texts.append(str(block.get("thinking") or block.get("data") or ""))
        elif not user and btype in ("tool_use", "server_tool_use"):
            name = str(block.get("name", "tool"))
            texts.append(compact_json({"name": name, "input": block.get("input")}))
        else:
            texts.append(compact_json(block))
    return texts


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
