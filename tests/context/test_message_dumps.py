"""LangChain message dumps and one-message-per-line JSON Lines are profiled (issue #14).

The dumps are written by the real ``langchain_core`` library; the truth is the same
conversation written by hand as an OpenAI chat request, which must profile to the
same layers and totals.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memlens.context import profile_file

lc = pytest.importorskip("langchain_core.messages")
from langchain_core.load import dumpd  # noqa: E402

SYSTEM = "You are a careful coding assistant. Prefer small, reviewed changes. " * 8
FILE = "def refund(cents):\n    return int(cents * 0.9)\n" * 40


def conversation() -> list:
    return [
        lc.SystemMessage(SYSTEM),
        lc.HumanMessage("Why does the refund test fail? Read app.py."),
        lc.AIMessage(
            "", tool_calls=[{"name": "read_file", "args": {"path": "app.py"}, "id": "call_1"}]
        ),
        lc.ToolMessage(FILE, tool_call_id="call_1"),
        lc.AIMessage("refund() truncates with int(); it should round."),
    ]


#: The same conversation as an OpenAI chat request, written by hand.
TRUTH = {
    "messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Why does the refund test fail? Read app.py."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "app.py"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": FILE},
        {"role": "assistant", "content": "refund() truncates with int(); it should round."},
    ]
}


def _layers(profile) -> dict[str, int]:
    return {k.value: v.tokens for k, v in profile.layers.items() if v.tokens}


@pytest.fixture
def truth(tmp_path: Path):
    path = tmp_path / "truth.json"
    path.write_text(json.dumps(TRUTH))
    return profile_file(path, budget="128k")


@pytest.mark.parametrize("shape", ["messages_to_dict", "dumpd", "model_dump", "state"])
def test_langchain_dumps_profile_like_the_request(tmp_path: Path, truth, shape: str) -> None:
    messages = conversation()
    if shape == "messages_to_dict":
        data: object = lc.messages_to_dict(messages)
    elif shape == "dumpd":
        data = [dumpd(m) for m in messages]
    elif shape == "model_dump":
        data = [m.model_dump() for m in messages]
    else:
        data = {"messages": [m.model_dump() for m in messages]}  # a LangGraph state
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(data))
    profile = profile_file(path, budget="128k")
    assert profile.format == "openai-chat"
    assert _layers(profile) == _layers(truth)
    assert profile.total_tokens == truth.total_tokens
    assert any(i.sublayer == "files" for i in profile.items if i.layer.value == "working_memory")


@pytest.mark.parametrize("langchain", [False, True])
def test_one_message_per_line(tmp_path: Path, truth, langchain: bool) -> None:
    lines = lc.messages_to_dict(conversation()) if langchain else TRUTH["messages"]
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in lines) + "not json\n")
    profile = profile_file(path, budget="128k")
    assert _layers(profile) == _layers(truth)
    assert any("line 6: malformed JSON" in w for w in profile.warnings), profile.warnings
