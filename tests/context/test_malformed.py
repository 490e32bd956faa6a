"""Malformed transcripts and requests: a warning and the rest of the result, or one
clear line and a non-zero exit; never a traceback (issue #14, context profiler)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import CLAUDE_CODE, SESSION_ID, lines_before_compaction, run_context

OK_LINES = [
    {
        "type": "user",
        "sessionId": "s1",
        "uuid": "u1",
        "timestamp": "2025-06-03T09:00:07Z",
        "message": {"role": "user", "content": "hello"},
    },
    {
        "type": "assistant",
        "sessionId": "s1",
        "uuid": "a1",
        "timestamp": "2025-06-03T09:00:09Z",
        "message": {
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "hi"}],
            "usage": {"input_tokens": 100, "output_tokens": 10},
        },
    },
]


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_context(*args, columns="160")


def all_faces(path: Path, tmp_path: Path) -> dict:
    """Run text, JSON and HTML output over ``path``; each must succeed. The JSON."""
    for fmt in ("text", "html"):
        extra = ["-o", str(tmp_path / "out.html")] if fmt == "html" else []
        result = run(str(path), "-f", fmt, *extra)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    result = run(str(path), "-f", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_lone_surrogate_in_tool_output(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    cut = '{"type":"user","sessionId":"s1","timestamp":"2025-06-03T09:00:11Z",'
    cut += '"message":{"role":"user","content":"x \\ud83d"}}\n'
    path.write_text(jsonl(OK_LINES) + cut)
    data = all_faces(path, tmp_path)
    assert data["total_tokens"] > 0


@pytest.mark.parametrize("name", ["t.jsonl", "r.json"])
def test_byte_order_mark(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".jsonl"):
        body = jsonl(OK_LINES)
    else:
        body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    path.write_bytes(b"\xef\xbb\xbf" + body.encode())
    data = all_faces(path, tmp_path)
    assert data["format"] == ("claude-code" if name.endswith("l") else "openai-chat")


def test_infinite_token_count_and_deep_nesting(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    text = jsonl(OK_LINES).replace('"input_tokens": 100', '"input_tokens": 1e999')
    deep = '{"type":"user","sessionId":"s1","message":{"role":"user","content":'
    deep += "[" * 50_000 + "]" * 50_000 + "}}\n"
    path.write_text(text + deep)
    data = all_faces(path, tmp_path)
    assert any("line 3" in w for w in data["warnings"]), data["warnings"]


def test_record_without_timestamp_is_not_idle_for_hours(tmp_path: Path) -> None:
    path = tmp_path / f"{SESSION_ID}.jsonl"
    untimed = {
        "type": "user",
        "sessionId": SESSION_ID,
        "uuid": "zz",
        "message": {"role": "user", "content": "and now?"},
    }
    path.write_text("\n".join(lines_before_compaction()) + "\n" + json.dumps(untimed) + "\n")
    data = all_faces(path, tmp_path)
    assert data["last_timestamp"].startswith("2025-06-03"), data["last_timestamp"]
    kinds = [f["category"] for f in data["diagnosis"]["findings"]]
    assert "inactive_items" not in kinds, kinds


def test_truncated_last_line_warns(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(jsonl(OK_LINES) + '{"type":"user","sessionId":"s1","message":{"role":"us')
    data = all_faces(path, tmp_path)
    assert any("incomplete last line" in w for w in data["warnings"]), data["warnings"]
    text = run(str(path)).stdout
    assert "incomplete last line" in text


@pytest.mark.parametrize(
    "request_",
    [
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "tools": 5},
        {"model": "gpt-4o", "messages": [{"role": {"x": 1}, "content": "hi"}]},
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "functions": "f"},
        {
            "model": "claude-sonnet-4-5",
            "system": "s",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": {"a": 1},
        },
    ],
)
def test_request_fields_of_the_wrong_type(tmp_path: Path, request_: dict) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(request_))
    all_faces(path, tmp_path)


def test_claude_code_format_forced_on_a_request(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(
        json.dumps({"model": "gpt-4o", "messages": [{"role": "system", "content": "be brief"}]})
    )
    result = run(str(path), "--input-format", "claude-code")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "looks like an OpenAI chat request" in result.stderr
    assert "empty transcript" not in result.stderr


def test_fixture_still_profiles() -> None:
    result = run(str(CLAUDE_CODE), "-f", "json")
    assert result.returncode == 0, result.stderr
