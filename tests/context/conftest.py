"""Fixtures for the context profiler tests."""

from __future__ import annotations

import os
import subprocess
import sys
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


def run_context(
    *args: str, cwd: Path | None = None, columns: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m memlens context ARGS`` without the caller's ``MEMLENS_*`` variables;
    ``COLUMNS`` unset (redirected output) unless ``columns`` is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMLENS_")}
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run(
        [sys.executable, "-m", "memlens", "context", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
    )
