"""JSON Lines logs of API requests: one turn per request, leaks across requests.

A gateway or SDK hook often logs every chat request (OpenAI Chat Completions or
Anthropic Messages), one per line, bare or as a ``{"request": ..., "response": ...}``
pair. Each request re-sends the whole window, so the log is a series of snapshots of
one conversation. :class:`RequestLogReader` reads each request into a scratch session
with the format's own reader, then merges it into the log's session:

* every request is one turn of the timeline: the estimated window it sent, the API's
  usage (input, output, cache read/write) from its response, and its growth;
* an item sent again unchanged (same id and content, or the same content moved to
  another position when a client trims old messages) is *carried over*: it keeps the
  turn it first appeared in, and is not counted as a new injection;
* a system block, tool definition or memory file whose content changed under the same
  id (a system prompt with notes appended on each request) keeps its size history, so
  growth request after request shows as a ``growing_item`` leak;
* only items new in a request are observed for leaks, so a file read again in a later
  request, or the same tool output re-injected, is a leak while history re-sent by
  the protocol is not;
* conversation or working-memory items dropped from one request to the next (client
  side truncation or summarising) are recorded as a compaction of that turn.

Counts are cached by content digest, so re-sent history is hashed but never tokenized
again: reading a log costs one tokenization of each distinct text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from memlens.context.items import ContextItem
from memlens.context.layers import Layer
from memlens.context.readers import anthropic_messages, jsontext, openai_chat
from memlens.context.readers.common import parse_timestamp
from memlens.context.readers.detect import classify_document
from memlens.context.readers.request_base import RequestReader, unwrap
from memlens.context.session import CompactionEvent, ContextSession

FORMAT_SUFFIX = "log"

#: Layers whose items a client drops when it trims or summarises history.
_TRIMMABLE = (Layer.CONVERSATION, Layer.WORKING_MEMORY, Layer.AGENT_STATES)

#: Keys of a logged line (or of its response) that may hold when the request was made.
_TIME_KEYS = ("timestamp", "time", "created_at", "created", "ts", "date")


def request_timestamp(document: dict[str, Any]) -> datetime | None:
    """When a logged request was made: the wrapper's time, else the response's."""
    _, response = unwrap(document)
    for holder in (document, response or {}):
        for key in _TIME_KEYS:
            when = parse_timestamp(holder.get(key))
            if when is not None:
                return when
    return None


class RequestLogReader:
    """Feeds a JSON Lines log of requests of one ``format`` into ``session``."""

    def __init__(self, session: ContextSession, format: str) -> None:
        if format not in (openai_chat.FORMAT, anthropic_messages.FORMAT):
            raise ValueError(f"not a request format: {format}")
        self.session = session
        self.format = format
        self.requests = 0

    def _reader(self, scratch: ContextSession) -> RequestReader:
        if self.format == anthropic_messages.FORMAT:
            return anthropic_messages.AnthropicMessagesReader(scratch)
        return openai_chat.OpenAIChatReader(scratch)

    # ---------------------------------------------------------------- entry points
    def texts(self, record: dict[str, Any]) -> list[str]:
        """Texts to count ahead in a batch: none (re-sent history is mostly cached)."""
        return []

    def feed_line(self, line: str, lineno: int) -> None:
        """Parse and apply one line; malformed lines become warnings."""
        text = line.strip()
        if not text:
            return
        try:
            record = jsontext.loads(text)
        except ValueError:
            self.session.lines_read += 1
            self.session.warn(f"line {lineno}: malformed JSON, skipped")
            return
        if not isinstance(record, dict):
            self.session.lines_read += 1
            self.session.warn(f"line {lineno}: not a JSON object, skipped")
            return
        self.feed_parsed(record, lineno)

    def feed_parsed(self, record: dict[str, Any], lineno: int) -> None:
        """Apply one parsed line: a request (or request/response pair) of the log."""
        s = self.session
        s.lines_read += 1
        if classify_document(record) is None:
            s.warn(f"line {lineno}: not a chat request (no 'messages' list), skipped")
            return
        scratch = ContextSession(
            s.model, counter=s.counter, source=s.source, format=self.format, name=s.name
        )
        try:
            self._reader(scratch).read(record, source=f"line {lineno}")
        except (TypeError, ValueError, AttributeError) as exc:
            s.warn(f"line {lineno}: not a {self.format} request ({exc}), skipped")
            return
        self._merge(scratch, record, lineno)

    # ---------------------------------------------------------------- merging
    def _merge(self, scratch: ContextSession, record: dict[str, Any], lineno: int) -> None:
        s = self.session
        self.requests += 1
        s.records += 1
        when = request_timestamp(record)
        if scratch.seen_model:
            s.seen_model = scratch.seen_model
            s.model = s.model or scratch.seen_model
        for warning in scratch.warnings:
            s.warn(warning)
        last_prompt = scratch.turns[-1].label if scratch.turns else ""
        previous = s.items
        previous_tokens = s.window_tokens
        turn = s.new_turn(when, label=last_prompt or f"request {self.requests}")
        by_digest: dict[tuple[Layer, bytes], ContextItem] = {}
        for item in previous.values():
            if item.digest:
                by_digest.setdefault((item.layer, item.digest), item)
        observed = {
            obs.item_id: obs.kind for history in scratch.observations.values() for obs in history
        }
        for copies in scratch.outputs.values():
            for obs in copies:
                observed.setdefault(obs.item_id, obs.kind)
        merged: dict[str, ContextItem] = {}
        carried: set[int] = set()
        replaced: set[int] = set()
        moved: dict[str, str] = {}
        for item in scratch.items.values():
            old = previous.get(item.id)
            same = old is not None and old.digest == item.digest and old.tokens == item.tokens
            if not same and item.digest:
                twin = by_digest.get((item.layer, item.digest))
                if twin is not None and id(twin) not in carried and twin.tokens == item.tokens:
                    old, same = twin, True
            if old is not None and same:
                # re-sent unchanged: the earlier item, under this request's id
                carried.add(id(old))
                if old.id != item.id:
                    moved[old.id] = item.id
                    old.id = item.id
                old.last_accessed = when or old.last_accessed
                merged[item.id] = old
                continue
            item.turn = turn.index
            if when is not None:
                item.created = item.last_accessed = when
            if old is not None and old.layer is item.layer and item.layer not in _TRIMMABLE:
                # a system block or tool changed in place: keep its history so steady
                # growth is a leak (messages shift position when a client trims, so
                # their ids do not identify them across requests)
                item.created, item.turn = old.created, old.turn
                item.token_history = (old.token_history + [item.tokens])[-64:]
                replaced.add(id(old))
            merged[item.id] = item
            if old is None and item.id in observed:
                s.observe(item, observed[item.id])
        if moved:
            self._rename_observations(moved)
        dropped = sum(
            item.tokens
            for item in previous.values()
            if id(item) not in carried and id(item) not in replaced and item.layer in _TRIMMABLE
        )
        s.items = merged
        s.window_tokens = sum(item.tokens for item in merged.values())
        turn.context_tokens = s.window_tokens
        turn.start_tokens = previous_tokens
        s.hidden_overhead = scratch.hidden_overhead
        if s.first_timestamp is None and scratch.first_timestamp and when is None:
            s.first_timestamp = scratch.first_timestamp
        if when is not None:
            s._stamp(when)
        if dropped and self.requests > 1:
            s.compactions.append(
                CompactionEvent(
                    turn=turn.index,
                    timestamp=when,
                    trigger="client trimmed history",
                    pre_tokens=previous_tokens,
                    dropped_tokens=dropped,
                )
            )
            if when is not None:
                s.cleanups.append(when)
            turn.compacted = True
        for scratch_turn in scratch.turns:
            for call_id, call in scratch_turn.calls.items():
                s.record_call(
                    call_id,
                    input_tokens=call.input_tokens,
                    output_tokens=call.output_tokens,
                    cache_read_tokens=call.cache_read_tokens,
                    cache_write_tokens=call.cache_write_tokens,
                    timestamp=when,
                    estimated_input=call.estimated_input,
                )

    def _rename_observations(self, moved: dict[str, str]) -> None:
        """Point leak observations at the ids that moved items now have."""
        for history in self.session.observations.values():
            for obs in history:
                obs.item_id = moved.get(obs.item_id, obs.item_id)
        for copies in self.session.outputs.values():
            for obs in copies:
                obs.item_id = moved.get(obs.item_id, obs.item_id)
