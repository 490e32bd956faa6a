"""``memlens context fit``: the preview, the written request, bad input (real subprocesses)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.context.conftest import ANTHROPIC, CLAUDE_CODE
from tests.memlens_cli import memlens

from .agent_sessions import check_anthropic, check_openai, openai_session


def _request(tmp_path: Path) -> Path:
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"model": "gpt-4o", "messages": openai_session(40)}))
    return path


def test_preview_and_write(tmp_path: Path) -> None:
    request = _request(tmp_path)
    original = request.read_text()
    out = tmp_path / "fitted.json"
    done = memlens(
        "context", "fit", str(request), "--budget", "8k", "-o", str(out), db=tmp_path / "db.sqlite"
    )
    assert done.returncode == 0, done.stderr
    assert "what happens to each item" in done.stdout and "resulting profile" in done.stdout
    assert "grouped" in done.stdout or "summary" in done.stdout
    fitted = json.loads(out.read_text())
    assert fitted["model"] == "gpt-4o"
    assert check_openai(fitted["messages"]) == []
    assert request.read_text() == original  # the input is never touched
    # the written request, profiled by `memlens context`, is inside the budget
    profiled = memlens(
        "context", str(out), "--budget", "8k", "-f", "json", db=tmp_path / "db.sqlite"
    )
    assert profiled.returncode == 0, profiled.stderr
    assert json.loads(profiled.stdout)["total_tokens"] <= 8000


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    request = _request(tmp_path)
    out = tmp_path / "fitted.json"
    done = memlens(
        "context",
        "fit",
        str(request),
        "--budget",
        "10k",
        "-o",
        str(out),
        "--dry-run",
        "-f",
        "json",
        db=tmp_path / "db.sqlite",
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["dry_run"] is False or data["written"] is None
    assert data["tokens_after"] <= 10_000 and data["tokens_before"] > 10_000
    assert not out.exists()


def test_anthropic_request_and_claude_code_transcript(tmp_path: Path) -> None:
    for source in (ANTHROPIC, CLAUDE_CODE):
        out = tmp_path / f"{source.stem}.fitted.json"
        done = memlens(
            "context",
            "fit",
            str(source),
            "--budget",
            "2k",
            "-o",
            str(out),
            db=tmp_path / "db.sqlite",
        )
        if done.returncode != 0:
            # a budget below what must be kept is refused in one line
            assert "cannot fit" in done.stderr and "Traceback" not in done.stderr
            continue
        fitted = json.loads(out.read_text())
        assert check_anthropic(fitted["messages"]) == []


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    request = _request(tmp_path)
    cases = [
        (["--budget", "8k", "--model", "no-such-model-1"], "unknown model"),
        (["--budget", "20"], "cannot fit"),
        (["--budget", "many"], "invalid budget"),
    ]
    for extra, message in cases:
        done = memlens("context", "fit", str(request), *extra, db=tmp_path / "db.sqlite")
        assert done.returncode != 0
        assert message in done.stderr and "Traceback" not in done.stderr
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"messages": [{"role": "user", "content": "x"}, 5]}))
    done = memlens("context", "fit", str(broken), "--budget", "1k", db=tmp_path / "db.sqlite")
    assert done.returncode != 0 and "not an object" in done.stderr
    missing = memlens(
        "context", "fit", str(tmp_path / "nope.json"), "--budget", "1k", db=tmp_path / "db.sqlite"
    )
    assert missing.returncode != 0 and "no such file" in missing.stderr
    same = memlens(
        "context",
        "fit",
        str(request),
        "--budget",
        "8k",
        "-o",
        str(request),
        db=tmp_path / "db.sqlite",
    )
    assert same.returncode != 0 and "must not be the input" in same.stderr
