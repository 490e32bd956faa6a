"""Incremental profiling of a growing transcript."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memlens.context import ContextProfiler, Layer
from memlens.context.tokens import CachedCounter
from memlens.core.errors import ConfigError, InputFormatError

from .conftest import SESSION_ID, lines_before_compaction


def turn(n: int) -> list[str]:
    user = {
        "type": "user",
        "sessionId": SESSION_ID,
        "uuid": f"new-u{n}",
        "timestamp": "2025-06-03T11:00:00Z",
        "message": {"role": "user", "content": f"New question number {n} about refunds?"},
    }
    answer = {
        "type": "assistant",
        "sessionId": SESSION_ID,
        "uuid": f"new-a{n}",
        "timestamp": "2025-06-03T11:00:05Z",
        "requestId": f"req_new{n}",
        "message": {
            "id": f"msg_new{n}",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": f"Answer {n}: " + "detail " * 50}],
            "usage": {
                "input_tokens": 5,
                "cache_read_input_tokens": 20000,
                "cache_creation_input_tokens": 300,
                "output_tokens": 60,
            },
        },
    }
    return [json.dumps(user), json.dumps(answer)]


def test_update_reads_only_the_appended_turn(tmp_path: Path) -> None:
    path = tmp_path / f"{SESSION_ID}.jsonl"
    path.write_text("\n".join(lines_before_compaction()) + "\n")
    counter = CachedCounter("cl100k_base")
    profiler = ContextProfiler(path, counter=counter, subagents=False)
    first = profiler.update()
    misses = counter.misses
    with path.open("a") as handle:
        handle.write("\n".join(turn(1)) + "\n")
    second = profiler.update()
    # only the two new blocks (and the new assistant block's JSON) were tokenized
    assert 0 < counter.misses - misses <= 4
    assert second.total_tokens > first.total_tokens
    assert len(second.timeline) == len(first.timeline) + 1
    assert profiler.update().total_tokens == second.total_tokens  # nothing new: same


def test_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    user, answer = turn(1)
    path.write_text(user + "\n" + answer[:40])
    profiler = ContextProfiler(path)
    first = profiler.update()
    assert first.warning_count == 0 or all("malformed" not in w for w in first.warnings)
    with path.open("a") as handle:
        handle.write(answer[40:] + "\n")
    second = profiler.update()
    assert second.usage is not None and second.total_tokens > first.total_tokens
    assert not [w for w in second.warnings if "malformed" in w]


def test_truncated_file_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    path.write_text("\n".join(turn(1) + turn(2)) + "\n")
    profiler = ContextProfiler(path)
    before = profiler.update()
    path.write_text("\n".join(turn(3)) + "\n")
    after = profiler.update()
    assert len(after.timeline) == 1 and after.total_tokens < before.total_tokens


def test_request_file_reprofiled_when_changed(tmp_path: Path) -> None:
    path = tmp_path / "req.json"
    path.write_text(
        json.dumps(
            {
                "model": "gpt-4o",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi"},
                ],
            }
        )
    )
    profiler = ContextProfiler(path)
    first = profiler.update()
    path.write_text(
        json.dumps(
            {
                "model": "gpt-4o",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi " * 100},
                ],
            }
        )
    )
    second = profiler.update()
    assert second.layers[Layer.CONVERSATION].tokens > first.layers[Layer.CONVERSATION].tokens


def test_request_jsonl_log_is_a_timeline_of_requests(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    a = {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "one"}],
    }
    b = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "two"},
            {"role": "user", "content": "three"},
        ],
    }
    path.write_text(json.dumps(a) + "\nnot json\n" + json.dumps(b) + "\n")
    p = ContextProfiler(path).update()
    assert len(p.timeline) == 2 and any("line 2" in w for w in p.warnings)
    # one turn per request: the second request added two messages to the first
    assert p.timeline[1].delta_tokens > 0 and p.timeline[1].label == "three"


def test_invalid_arguments(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("\n".join(turn(1)) + "\n")
    with pytest.raises(ConfigError, match="unknown model"):
        ContextProfiler(path, model="no-such-model")
    with pytest.raises(ConfigError, match="invalid input format"):
        ContextProfiler(path, input_format="yaml")
    with pytest.raises(ConfigError, match="invalid budget"):
        ContextProfiler(path, budget="-3")
    assert ContextProfiler(path, model="no-such-model", budget="50k").update().budget == 50_000
    only_meta = tmp_path / "meta.jsonl"
    only_meta.write_text('{"type": "summary", "summary": "x", "leafUuid": "u"}\nbroken\n')
    with pytest.raises(InputFormatError, match="empty transcript"):
        ContextProfiler(only_meta).update()
