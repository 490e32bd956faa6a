"""JSON Lines logs of API requests: one turn per request, leaks across requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memlens.context import ContextProfiler, profile_file
from memlens.context.layers import Layer
from memlens.core.errors import InputFormatError

from .conftest import FIXTURES

OPENAI_LOG = FIXTURES / "openai" / "chat_log.jsonl"
ANTHROPIC_LOG = FIXTURES / "anthropic" / "messages_log.jsonl"


def _valid_lines(path: Path) -> list[dict]:
    out = []
    for raw in path.read_text().splitlines():
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue
    return out


def test_openai_log_timeline_has_one_turn_per_request() -> None:
    profile = profile_file(OPENAI_LOG)
    logged = _valid_lines(OPENAI_LOG)
    assert profile.format == "openai-chat"
    assert len(profile.timeline) == len(logged) == 8
    for turn, line in zip(profile.timeline, logged, strict=True):
        usage = line["response"]["usage"]
        cached = usage["prompt_tokens_details"]["cached_tokens"]
        assert turn.api_calls == 1
        assert turn.input_tokens == usage["prompt_tokens"] - cached
        assert turn.cache_read_tokens == cached
        assert turn.output_tokens == usage["completion_tokens"]
        assert turn.started == line["timestamp"]
    sizes = [t.context_tokens for t in profile.timeline]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    assert sum(t.delta_tokens for t in profile.timeline) == profile.total_tokens
    # the half-written line is reported with its number, the rest is read
    assert profile.warnings == ["line 5: malformed JSON, skipped"]
    assert not profile.compactions  # nothing was trimmed


def test_final_window_equals_the_last_request_alone(tmp_path: Path) -> None:
    last = tmp_path / "last.json"
    last.write_text(json.dumps(_valid_lines(OPENAI_LOG)[-1]))
    alone = profile_file(last)
    log = profile_file(OPENAI_LOG)
    assert log.total_tokens == alone.total_tokens
    assert {k: v.tokens for k, v in log.layers.items()} == {
        k: v.tokens for k, v in alone.layers.items()
    }


def test_leaks_across_requests_but_not_resent_history() -> None:
    profile = profile_file(OPENAI_LOG)
    kinds = {leak.kind: leak for leak in profile.leaks}
    assert set(kinds) == {"repeated_file_read", "growing_tool_result", "growing_item"}
    reads = kinds["repeated_file_read"]
    # read in requests 1, 4 and 7: three reads, not one per request that re-sent them
    assert reads.occurrences == 3 and (reads.first_turn, reads.last_turn) == (2, 8)
    assert reads.tokens_in_window == sum(reads.sizes[:-1])
    growing = kinds["growing_tool_result"]
    assert "server.log" in growing.label and growing.sizes == sorted(growing.sizes)
    system = kinds["growing_item"]
    assert system.item_ids == ["m0"] and system.occurrences >= 3
    # the pytest output was sent in 7 requests but injected once: not a duplicate
    assert "duplicated_tool_output" not in kinds


def test_anthropic_log_client_trimming_is_a_compaction() -> None:
    profile = profile_file(ANTHROPIC_LOG)
    assert profile.format == "anthropic-messages"
    assert len(profile.timeline) == 5
    assert [t.compacted for t in profile.timeline] == [False, False, False, True, False]
    (event,) = profile.compactions
    assert event.turn == 4 and event.trigger == "client trimmed history"
    before, after = profile.timeline[2], profile.timeline[3]
    assert event.pre_tokens == before.context_tokens
    assert after.context_tokens < before.context_tokens
    assert event.dropped_tokens > 0
    assert profile.timeline[3].cache_read_tokens > 0
    # items re-sent after the trim keep the turn they first appeared in
    oldest = min(i.turn for i in profile.items if i.layer is Layer.CONVERSATION)
    assert oldest == 3


def test_log_is_followed_incrementally(tmp_path: Path) -> None:
    lines = OPENAI_LOG.read_text().splitlines()
    path = tmp_path / "live.jsonl"
    path.write_text("\n".join(lines[:4]) + "\n")
    profiler = ContextProfiler(path)
    first = profiler.update()
    assert len(first.timeline) == 4
    with path.open("a") as handle:
        handle.write("\n".join(lines[4:]) + "\n")
    counter = profiler.session.counter if profiler.session else None
    assert counter is not None
    misses = counter.misses
    second = profiler.update()
    assert len(second.timeline) == 8
    assert second.total_tokens == profile_file(OPENAI_LOG).total_tokens
    # only texts new in the appended requests were tokenized
    assert counter.misses - misses < 40


def test_log_without_any_request_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    good = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    path.write_text(good + "\n" + good + "\n")
    assert len(profile_file(path).timeline) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good + "\n" + good + "\n")
    profiler = ContextProfiler(bad)
    bad.write_text('{"messages": 3}\n{"other": 1}\n')
    with pytest.raises(InputFormatError, match="no request with 'messages' found"):
        profiler.update()
