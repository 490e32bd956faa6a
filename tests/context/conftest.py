"""Fixtures for the context profiler tests."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SESSION_ID = "5f1c2a7e-0b4d-4c2e-9a51-3d8e6f7a9b10"
CLAUDE_CODE = FIXTURES / "claude_code" / f"{SESSION_ID}.jsonl"
OPENAI = FIXTURES / "openai" / "chat_request.json"
OPENAI_LOGGED = FIXTURES / "openai" / "chat_logged.json"
ANTHROPIC = FIXTURES / "anthropic" / "messages_request.json"
ANTHROPIC_LOGGED = FIXTURES / "anthropic" / "messages_logged.json"


def lines_before_compaction() -> list[str]:
    """The Claude Code fixture up to (not including) its compact boundary."""
    kept = []
    for line in CLAUDE_CODE.read_text().splitlines():
        if '"compact_boundary"' in line:
            break
        kept.append(line)
    return kept


@pytest.fixture
def uncompacted(tmp_path: Path) -> Path:
    """A copy of the Claude Code fixture cut before its compaction (leaks still in window)."""
    path = tmp_path / f"{SESSION_ID}.jsonl"
    path.write_text("\n".join(lines_before_compaction()) + "\n")
    return path
