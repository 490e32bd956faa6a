"""``memlens context`` through a real subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ANTHROPIC, CLAUDE_CODE, OPENAI


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "memlens", "context", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_text_report(uncompacted: Path) -> None:
    result = run(str(uncompacted), "--top", "5")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in (
        "context window map",
        "layers",
        "largest items (top 5)",
        "working memory",
        "context leaks",
        "repeated_file_read",
        "usage vs estimate",
        "diagnosis",
        "line 27: malformed JSON, skipped",
    ):
        assert text in out, text
    grid = [line for line in out.splitlines() if "SSSS" in line]
    assert grid and "W" in "".join(out.splitlines()[out.splitlines().index(grid[0]) :][:8])


def test_json_report_with_budget_and_model() -> None:
    result = run(str(OPENAI), "--format", "json", "--budget", "10k")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["budget"] == 10_000 and data["budget_source"] == "budget"
    assert data["status"] == "healthy" and data["format"] == "openai-chat"
    assert data["counting"]["exact"] is True
    assert set(data["layers"]) >= {"system_prompt", "tool_definitions", "working_memory"}
    assert data["diagnosis"]["severity"] in ("none", "low", "medium", "high", "critical")
    tight = json.loads(run(str(OPENAI), "-f", "json", "-b", "5000").stdout)
    assert tight["status"] in ("high", "critical")
    model = json.loads(run(str(ANTHROPIC), "-f", "json", "--model", "gpt-4").stdout)
    assert model["budget"] == 8192 and model["model"]["name"] == "gpt-4"


def test_html_report_file(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = run(str(CLAUDE_CODE), "--format", "html", "--output", str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert 'id="grid"' in html and 'id="timeline"' in html and "<script" in html
    assert not re.search(r"<(script|link)[^>]+(src|href)=", html)  # nothing loaded from outside
    assert "sub-agents" in html.lower()


def test_output_file_and_models_file(tmp_path: Path) -> None:
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"models": [{"name": "house-model", "context_window": 30000}]}))
    out = tmp_path / "r.json"
    result = run(
        str(OPENAI),
        "-f",
        "json",
        "-o",
        str(out),
        "--models-file",
        str(models),
        "--model",
        "house-model-v2",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["budget"] == 30_000


def test_watch_follows_a_growing_transcript(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    lines = CLAUDE_CODE.read_text().splitlines()
    path.write_text("\n".join(lines[:10]) + "\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "memlens",
            "context",
            str(path),
            "--watch",
            "--format",
            "json",
            "--interval",
            "0.3",
            "--max-refreshes",
            "12",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    with path.open("a") as handle:
        handle.write("\n".join(lines[10:30]) + "\n")
    totals = [first["total_tokens"]]
    for _ in range(11):
        line = proc.stdout.readline()
        if not line:
            break
        totals.append(json.loads(line)["total_tokens"])
    assert proc.wait(timeout=30) == 0
    assert len(totals) == 12 and totals[-1] > totals[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/file.jsonl"], "no such file"),
        (["{fixture}", "--budget", "lots"], "invalid budget"),
        (["{fixture}", "--model", "no-such-model"], "unknown model"),
        (["{fixture}", "--format", "html"], "needs --output"),
        (["{text}"], "unknown format"),
        (["{empty}"], "empty"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("just some notes\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    args = [a.format(fixture=CLAUDE_CODE, text=text, empty=empty) for a in args]
    result = run(*args)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
