"""fit_messages: valid API lists, invariants, exact budgets, bad input."""

from __future__ import annotations

import copy
import json

import pytest

import memlens
from memlens.context.memory import BudgetError, fit_messages
from memlens.context.memory.messages import measure
from memlens.context.tokens import get_counter
from memlens.core.errors import ConfigError, InputFormatError, MemlensError

from .agent_sessions import (
    SYSTEM,
    anthropic_session,
    check_anthropic,
    check_openai,
    openai_session,
    pairs,
)

COUNTER = get_counter("cl100k_base")


def _text(messages: list[dict]) -> str:
    return json.dumps(messages, ensure_ascii=False)


@pytest.mark.parametrize("share", [0.9, 0.5, 0.25, 0.1])
def test_openai_fit_is_valid_and_within_budget(share: float) -> None:
    messages = openai_session(40)
    original = copy.deepcopy(messages)
    before = measure(messages, "openai-chat", model=None, system=None, tools=None, counter=COUNTER)
    budget = int(before * share)
    result = fit_messages(messages, budget=budget)
    assert messages == original, "the input list was modified"
    assert result.tokens_after <= budget
    # the budget holds by the profiler's own reader, measured independently here
    assert (
        measure(
            result.messages, "openai-chat", model=None, system=None, tools=None, counter=COUNTER
        )
        == result.tokens_after
    )
    assert check_openai(result.messages) == []
    assert result.messages[0] == {"role": "system", "content": SYSTEM}
    calls, results = pairs(result.messages, "openai-chat")
    assert calls == results, "a tool call was separated from its result"


@pytest.mark.parametrize("share", [0.9, 0.5, 0.25, 0.1])
def test_anthropic_fit_is_valid_and_keeps_system(share: float) -> None:
    messages = anthropic_session(40)
    system = [{"type": "text", "text": "Pinned instructions: never push to main."}]
    tools = [
        {
            "name": "read_file",
            "description": "Read a file",
            "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
        }
    ]
    before = measure(
        messages, "anthropic-messages", model=None, system=system, tools=tools, counter=COUNTER
    )
    budget = int(before * share)
    result = fit_messages(
        messages, budget=budget, system=system, tools=tools, model="claude-sonnet-4-5"
    )
    assert result.format == "anthropic-messages"
    assert result.tokens_after <= budget
    assert result.system == system and result.tools == tools
    assert check_anthropic(result.messages) == []
    calls, results = pairs(result.messages, "anthropic-messages")
    assert calls == results
    assert result.request()["system"] == system


def test_last_turns_stay_verbatim_and_pinned_messages_kept() -> None:
    messages = openai_session(40)
    pinned = 5  # the assistant call of turn 1
    result = fit_messages(messages, budget=4000, keep_last_turns=2, pinned=[1, pinned, 6])
    out = _text(result.messages)
    # the last two turns (from the second-to-last user message on) are unchanged
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    for m in messages[users[-2] :]:
        assert m in result.messages
    for index in (1, pinned, 6):
        assert messages[index] in result.messages
    assert "summary" in out


def test_same_input_same_output() -> None:
    messages = openai_session(30)
    a = fit_messages(messages, budget=5000)
    b = fit_messages(copy.deepcopy(messages), budget=5000)
    assert a.messages == b.messages
    assert a.report.to_dict() == b.report.to_dict()


def test_every_original_is_recoverable() -> None:
    messages = openai_session(30)
    result = fit_messages(messages, budget=3000)
    archive = result.memory.archive
    assert archive.ids(), "nothing was archived"
    originals = {}
    for i, m in enumerate(messages):
        originals[f"m{i}"] = m.get("content") or ""
    for item_id in archive.ids():
        item = archive.get(item_id)
        if item_id in originals:
            assert item.content == originals[item_id]
    for summary in result.report.summaries:
        expanded = result.expand(summary)
        assert expanded or summary.startswith("summary:4")
    # every message that is no longer verbatim has its original in the archive
    kept = _text(result.messages)
    for item_id, text in originals.items():
        if text and json.dumps(text)[1:-1] not in kept:
            assert archive.get(item_id).content == text


def test_expand_gives_back_each_original_message_whole() -> None:
    messages = openai_session(30)
    result = fit_messages(messages, budget=3000)
    checked = 0
    for item_id in result.memory.archive.ids():
        (item,) = result.memory.expand(item_id)
        payload = item.meta["payload"]
        raw = payload["raw"]
        if payload["block"] == 0 and payload["msg"] >= 0:
            # the archived raw message is the original one, text included
            assert raw == messages[payload["msg"]]
            checked += 1
    assert checked > 10


def test_bad_input_is_a_clear_error() -> None:
    messages = openai_session(5)
    with pytest.raises(ConfigError, match="unknown model"):
        fit_messages(messages, budget=1000, model="no-such-model-9")
    with pytest.raises(InputFormatError, match="not an object"):
        fit_messages([{"role": "user", "content": "hi"}, "oops"], budget=1000)  # type: ignore[list-item]
    with pytest.raises(InputFormatError, match="role"):
        fit_messages([{"role": "robot", "content": "hi"}], budget=1000)
    with pytest.raises(InputFormatError, match="no earlier"):
        fit_messages(
            [
                {"role": "user", "content": "x"},
                {"role": "tool", "tool_call_id": "nope", "content": "r"},
            ],
            budget=1000,
        )
    with pytest.raises(InputFormatError, match="list"):
        fit_messages("hello", budget=1000)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="budget"):
        fit_messages(messages, budget="lots")
    before = copy.deepcopy(messages)
    with pytest.raises(BudgetError, match="cannot fit") as info:
        fit_messages(messages, budget=50)
    assert isinstance(info.value, MemlensError)
    assert "pinned" in str(info.value)
    assert messages == before


def test_public_api_name() -> None:
    assert memlens.fit_messages is fit_messages
    assert memlens.ContextMemory.__name__ == "ContextMemory"
