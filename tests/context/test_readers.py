"""Readers: Claude Code transcripts, OpenAI chat and Anthropic Messages requests, detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memlens.context import ContextSession, Layer, profile_file
from memlens.context.readers import ClaudeCodeReader
from memlens.context.readers.detect import detect_format
from memlens.core.errors import InputFormatError

from .conftest import (
    ANTHROPIC,
    ANTHROPIC_LOGGED,
    CLAUDE_CODE,
    FIXTURES,
    OPENAI,
    OPENAI_LOGGED,
    lines_before_compaction,
)


def test_detection() -> None:
    assert detect_format(CLAUDE_CODE) == "claude-code"
    assert detect_format(OPENAI) == "openai-chat"
    assert detect_format(OPENAI_LOGGED) == "openai-chat"
    assert detect_format(ANTHROPIC) == "anthropic-messages"
    assert detect_format(ANTHROPIC_LOGGED) == "anthropic-messages"
    assert detect_format(FIXTURES / "openai" / "messages_only.json") == "openai-chat"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("hello world\n", "unknown format"),
        ('{"foo": 1}\n', "unknown format"),
        ("[1, 2, 3]", "unknown format"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "input.json"
    path.write_text(content)
    with pytest.raises(InputFormatError, match=message):
        profile_file(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="no such file"):
        profile_file(tmp_path / "nope.jsonl")
    with pytest.raises(InputFormatError, match="directory"):
        profile_file(tmp_path)


def test_claude_code_transcript() -> None:
    p = profile_file(CLAUDE_CODE)
    assert p.format == "claude-code" and p.model and p.model.name == "claude-sonnet-4-5"
    # malformed lines are skipped and reported with their line numbers
    assert [w for w in p.warnings if "malformed" in w] == [
        "line 27: malformed JSON, skipped",
        "line 39: malformed JSON, skipped",
    ]
    # the compaction dropped everything before it; the summary is long-term memory
    assert len(p.compactions) == 1 and p.compactions[0].trigger == "auto"
    assert p.compaction_point == 152_340 and "observed" in p.compaction_point_source
    assert p.layers[Layer.LONG_TERM_MEMORY].breakdown["compressed"] > 0
    assert p.layers[Layer.WORKING_MEMORY].tokens == 0
    assert p.compressions and p.compressions[0][0] == 152_340
    # memory file injected by a system reminder survives compaction
    assert "/home/dev/shop/CLAUDE.md" in p.layers[Layer.MEMORY_FILES].breakdown
    # hidden system prompt + tools inferred from the first call's usage
    inferred = [i for i in p.items if i.kind == "inferred"]
    assert len(inferred) == 1 and inferred[0].layer is Layer.SYSTEM_PROMPT
    assert 13_000 < inferred[0].tokens < 16_000
    # usage figures shown beside the estimate
    assert p.usage is not None and p.usage.api_calls == 19
    assert abs(p.usage.difference_ratio) < 0.1
    assert p.usage.cache_read_tokens > 0 and p.cache_hit_rate is not None
    # sub-agents: the nested one and the sibling of this session, not the other session's
    assert sorted(a.name for a in p.agents) == ["e1a2b3c4", "f5d6e7a8"]
    assert all(a.tokens > 9000 and a.api_calls == 3 for a in p.agents)
    # timeline
    assert len(p.timeline) == 7 and p.timeline[3].compacted
    assert sum(t.api_calls for t in p.timeline) == 19


def test_claude_code_before_compaction(uncompacted: Path) -> None:
    p = profile_file(uncompacted)
    wm = p.layers[Layer.WORKING_MEMORY].breakdown
    assert wm["files"] > 0 and wm["modules"] > 0 and wm["tasks"] > 0 and wm["debug_info"] > 0
    # the Task tool call and result are the agent's entry in the main window
    assert p.layers[Layer.AGENT_STATES].breakdown.get("Explore", 0) > 0
    # the 800x600 screenshot: 640 tokens by Anthropic's formula
    images = [i for i in p.items if i.kind == "image"]
    assert [i.tokens for i in images] == [640]
    # the failed command's result is debug info, not tracked as a leak
    assert any("shop.boom" in i.label and i.sublayer == "debug_info" for i in p.items)
    # thinking of the first turn was dropped when the second turn started
    assert not [i for i in p.items if i.kind == "thinking"]


def test_responses_spanning_lines_are_counted_once(tmp_path: Path) -> None:
    lines = lines_before_compaction()
    doubled = []
    for line in lines:
        doubled.append(line)
        if '"type": "assistant"' in line:
            doubled.append(line)  # the same block written twice (a streaming re-write)
    path = tmp_path / "dup.jsonl"
    path.write_text("\n".join(doubled) + "\n")
    once = profile_file(path)
    reference_path = tmp_path / "ref.jsonl"
    reference_path.write_text("\n".join(lines) + "\n")
    reference = profile_file(reference_path)
    assert once.total_tokens == reference.total_tokens
    assert once.usage and reference.usage and once.usage.api_calls == reference.usage.api_calls


def test_tool_use_result_ui_copy_is_not_counted(tmp_path: Path) -> None:
    base = {
        "type": "user",
        "sessionId": "s",
        "uuid": "u1",
        "timestamp": "2025-01-01T00:00:00Z",
        "message": {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t", "content": "short"}],
        },
    }
    big = dict(base, toolUseResult={"stdout": "x" * 100_000})
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(json.dumps(base) + "\n")
    b.write_text(json.dumps(big) + "\n")
    assert profile_file(a).total_tokens == profile_file(b).total_tokens < 20


def test_sidechain_lines_in_main_file_become_an_agent() -> None:
    s = ContextSession(source="t", format="claude-code")
    reader = ClaudeCodeReader(s)
    reader.feed(
        {"type": "user", "uuid": "1", "message": {"role": "user", "content": "main task"}}, 1
    )
    reader.feed(
        {
            "type": "user",
            "uuid": "2",
            "isSidechain": True,
            "message": {"role": "user", "content": "agent task " * 20},
        },
        2,
    )
    assert list(s.agents) == ["sidechain"]
    assert s.agents["sidechain"].window_tokens > s.window_tokens


def test_openai_chat_request() -> None:
    p = profile_file(OPENAI)
    assert p.format == "openai-chat" and p.model and p.model.name == "gpt-4o"
    assert p.exact and p.encoding == "o200k_base" and p.budget == 128_000
    assert set(p.layers[Layer.TOOL_DEFINITIONS].breakdown) == {
        "read_file",
        "run_shell",
        "search_code",
    }
    assert p.layers[Layer.SYSTEM_PROMPT].tokens > 0
    wm = p.layers[Layer.WORKING_MEMORY].breakdown
    assert wm["files"] > 0 and wm["debug_info"] > 0 and wm["modules"] > 0
    image = next(i for i in p.items if i.kind == "image")
    assert image.tokens == 765  # 1024x768, detail high: 4 tiles
    assert len(p.timeline) == 2
    kinds = {leak.kind for leak in p.leaks}
    assert kinds == {"repeated_file_read", "duplicated_tool_output"}
    # framing overheads: 3 per message + role, reply priming
    assert any(i.id == "reply-priming" and i.tokens == 3 for i in p.items)


def test_openai_logged_usage() -> None:
    p = profile_file(OPENAI_LOGGED)
    assert p.usage is not None
    assert p.usage.reported_context == 7420 and p.usage.cache_read_tokens == 6144
    assert p.usage.estimated_context == p.total_tokens


def test_anthropic_messages_request() -> None:
    p = profile_file(ANTHROPIC)
    assert p.format == "anthropic-messages" and p.model and p.model.name == "claude-opus-4-1"
    assert not p.exact and not p.approximate
    assert "/srv/shop/CLAUDE.md" in p.layers[Layer.MEMORY_FILES].breakdown
    tools = p.layers[Layer.TOOL_DEFINITIONS]
    assert set(tools.breakdown) == {"read_file", "bash"} and tools.tokens > 346
    images = sorted(i.tokens for i in p.items if i.kind == "image")
    assert images == [410, 1440]  # 640x480 (in a tool result), 1200x900
    assert any(i.kind == "image" and i.layer is Layer.WORKING_MEMORY for i in p.items)
    assert any(i.kind == "document" for i in p.items)
    # thinking from the first turn is dropped once the user speaks again
    assert not [i for i in p.items if i.kind == "thinking"]
    # the failed command is debug info
    assert p.layers[Layer.WORKING_MEMORY].breakdown["debug_info"] > 0


def test_anthropic_logged_usage() -> None:
    p = profile_file(ANTHROPIC_LOGGED)
    assert p.usage and p.usage.reported_context == 6512 and p.usage.cache_read_tokens == 6100
