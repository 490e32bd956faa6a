"""A memory built from the reader's counts equals one built by counting each item.

``fit_messages`` makes its memory with ``ContextMemory.add_counted`` (the reader's
token count of each entry given, nothing counted or parsed again). Before, each entry
went through ``ContextMemory.add`` (which counts it) and was then corrected to the
reader's count (``ContextSession.update``). These tests rebuild real transcripts'
memories both ways and compare every entry and every profiler item.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from memlens.context.layers import Layer
from memlens.context.memory import ContextMemory
from memlens.context.memory.messages import memory_from_messages
from memlens.context.session import ContextSession
from memlens.core.clock import ManualClock
from memlens.core.errors import ConfigError

from .agent_sessions import anthropic_session, openai_session

_SPEC = ("layer", "role", "kind", "priority", "pinned", "group", "payload")


def _old_way(memory: ContextMemory, entry: Any, overhead: int, tokens: int) -> None:
    """What the fit's builder did before: add (counting), then take the reader's count."""
    added = memory.add(
        entry.content,
        id=entry.id,
        overhead=overhead,
        new_turn=None,  # a user's text starts a turn
        **{k: getattr(entry, k) for k in _SPEC if k != "payload"},
        payload=dict(entry.payload),
    )
    if tokens != added.tokens:
        added.overhead = max(0, added.overhead + tokens - added.tokens)
        added.tokens = added.original_tokens = tokens
        memory.session.update(added.id, tokens=tokens)


def _new_way(memory: ContextMemory, entry: Any, overhead: int, tokens: int) -> None:
    memory.add_counted(
        entry.content,
        tokens,
        id=entry.id,
        overhead=overhead,
        new_turn=entry.role == "user" and entry.kind == "text",
        **{k: getattr(entry, k) for k in _SPEC if k != "payload"},
        payload=dict(entry.payload),
    )


def _specs(source: ContextMemory) -> list[tuple[Any, int, int]]:
    """Each entry of a fitted list's memory, with a framing and a reader count: most as
    the reader gave them (count + framing), some the reader counts higher or lower."""
    counter = source.session.counter
    rows = []
    for index, entry in enumerate(source.entries.values()):
        if entry.kind == "overhead":
            continue
        counted = counter.count(entry.content) if entry.content else 0
        overhead = entry.overhead
        tokens = counted + overhead
        if index % 7 == 3:
            tokens += 3  # framing the reader adds (an image, a name)
        elif index % 11 == 5:
            tokens = max(0, counted - 2)  # the reader counts less (a dropped block)
        elif index % 13 == 6:
            tokens = 0  # an entry the reader does not see
        rows.append((entry, overhead, tokens))
    return rows


def _items_equal(old: ContextSession, new: ContextSession) -> None:
    assert list(old.items) == list(new.items)
    for item_id, a in old.items.items():
        b = new.items[item_id]
        for f in dataclasses.fields(a):
            if f.name in ("token_history", "last_accessed"):
                continue  # the old way recorded its own count, then the reader's
            assert getattr(a, f.name) == getattr(b, f.name), (item_id, f.name)
        assert b.token_history == [b.tokens]
        assert b.last_accessed == b.created
    assert old.window_tokens == new.window_tokens
    assert [(t.index, t.label, t.started) for t in old.turns] == [
        (t.index, t.label, t.started) for t in new.turns
    ]
    assert old.turns[-1].context_tokens == new.turns[-1].context_tokens
    assert (old.first_timestamp, old.last_timestamp) == (new.first_timestamp, new.last_timestamp)


@pytest.mark.parametrize(
    "messages,kw",
    [
        (openai_session(30), {}),
        (anthropic_session(30), {"system": "You are a careful coding agent."}),
    ],
    ids=["openai", "anthropic"],
)
def test_counted_entries_equal_counted_then_corrected(messages: list, kw: dict) -> None:
    source = memory_from_messages(messages, **kw)
    rows = _specs(source)
    assert any(t != (source.session.counter.count(e.content) + o) for e, o, t in rows)
    old = ContextMemory(10**6, clock=ManualClock(), keep_last_turns=2)
    new = ContextMemory(10**6, clock=ManualClock(), keep_last_turns=2)
    # conversation before any user prompt opens a turn of its own, both ways
    lead = source.entries[next(iter(source.entries))]
    stray = dataclasses.replace(
        lead, id="stray", role="assistant", kind="text", layer=Layer.CONVERSATION
    )
    for memory, add in ((old, _old_way), (new, _new_way)):
        add(memory, stray, 4, 9)
        for entry, overhead, tokens in rows:
            add(memory, entry, overhead, tokens)
    assert list(old.entries) == list(new.entries)
    for entry_id, a in old.entries.items():
        assert a == new.entries[entry_id], entry_id
    assert old.tokens == new.tokens
    _items_equal(old.session, new.session)


def test_fitted_memory_adds_up_to_the_reader() -> None:
    messages = openai_session(30)
    memory = memory_from_messages(messages)
    from memlens.context.memory.messages import measure

    total = measure(
        messages,
        "openai-chat",
        model=None,
        system=None,
        tools=None,
        counter=memory.session.counter,
    )
    assert memory.tokens == total == memory.session.window_tokens


def test_counted_duplicate_id_is_refused() -> None:
    memory = ContextMemory(1000, clock=ManualClock())
    memory.add("hello there", id="a")
    with pytest.raises(ConfigError, match="duplicate"):
        memory.add_counted(
            "again",
            5,
            id="a",
            layer=Layer.CONVERSATION,
            role="user",
            kind="text",
            priority=memory.entries["a"].priority,
            pinned=False,
            group="",
            overhead=0,
            payload={},
            new_turn=False,
        )
