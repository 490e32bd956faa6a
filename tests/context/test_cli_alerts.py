"""``memlens context``: alerts shown, thresholds as options and config, ``--fail-on``,
project folders, and advice that names a non-empty part (issue #14)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from memlens.context import diagnose, profile_file

from .conftest import CLAUDE_CODE, FIXTURES, run_context

run = run_context


def test_alerts_are_shown_and_fail_on_sets_the_exit_status(tmp_path: Path) -> None:
    # the fixture holds about 15k tokens: 94% of 16k is a budget warning, not critical
    shown = run(str(CLAUDE_CODE), "--budget", "16k")
    assert shown.returncode == 0, shown.stderr
    assert "alerts (1)" in shown.stdout and "Token budget" in shown.stdout
    assert run(str(CLAUDE_CODE), "--budget", "16k", "--fail-on", "critical").returncode == 0
    failed = run(str(CLAUDE_CODE), "--budget", "16k", "--fail-on", "warning")
    assert failed.returncode == 1
    assert "1 alert(s) at or above warning" in failed.stderr
    quiet = run(str(CLAUDE_CODE), "--fail-on", "warning")  # a 200k window: no alert
    assert quiet.returncode == 0, quiet.stderr
    data = json.loads(run(str(CLAUDE_CODE), "--budget", "16k", "-f", "json").stdout)
    assert [a["severity"] for a in data["diagnosis"]["alerts"]] == ["warning"]


def test_thresholds_from_options_and_config(tmp_path: Path) -> None:
    strict = run(str(CLAUDE_CODE), "--budget-warning", "0.05", "--fail-on", "warning")
    assert strict.returncode == 1, strict.stdout[-500:]
    (tmp_path / "pyproject.toml").write_text(
        "[tool.memlens.context_thresholds]\ntoken_budget_warning = 0.05\n"
    )
    configured = run(str(CLAUDE_CODE), "--fail-on", "warning", cwd=tmp_path)
    assert configured.returncode == 1
    # an option beats the config
    relaxed = run(str(CLAUDE_CODE), "--fail-on", "warning", "--budget-warning", "0.9", cwd=tmp_path)
    assert relaxed.returncode == 0, relaxed.stderr
    (tmp_path / "pyproject.toml").write_text(
        "[tool.memlens.context_thresholds]\ntoken_budget_warnin = 0.5\n"
    )
    bad = run(str(CLAUDE_CODE), cwd=tmp_path)
    assert bad.returncode == 2 and "context_thresholds" in bad.stderr
    assert "pyproject.toml" in bad.stderr and "Traceback" not in bad.stderr
    assert run(str(CLAUDE_CODE), "--budget-warning", "1.5").returncode == 2


def test_project_folder_profiles_the_latest_session_or_each(tmp_path: Path) -> None:
    project = tmp_path / "-home-dev-shop"
    shutil.copytree(FIXTURES / "claude_code", project)
    newer = project / "0newest.jsonl"
    newer.write_text(
        json.dumps(
            {
                "type": "user",
                "sessionId": "0newest",
                "timestamp": "2025-06-04T09:00:00Z",
                "message": {"role": "user", "content": "a later session"},
            }
        )
        + "\n"
    )
    latest = run(str(project), "-f", "json")
    assert latest.returncode == 0, latest.stderr
    assert json.loads(latest.stdout)["source"].endswith("0newest.jsonl")
    assert "latest session, 0newest.jsonl" in latest.stderr
    each = run(str(project), "--all-sessions", "-f", "json")
    assert each.returncode == 0, each.stderr
    sources = [Path(p["source"]).name for p in json.loads(each.stdout)]
    assert sources == [CLAUDE_CODE.name, "0newest.jsonl"]  # oldest first; agents excluded
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = run(str(empty))
    assert refused.returncode == 2 and "no transcripts" in refused.stderr


def test_over_allocation_advice_names_a_non_empty_part(tmp_path: Path) -> None:
    log = "ERROR timeout while calling the payment service\n" * 300
    request = {
        "model": "gpt-4o",
        "messages": [
            {"role": "user", "content": "why do payments fail?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "shell", "arguments": '{"command": "cat app.log"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": log},
        ],
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps(request))
    profile = profile_file(path, budget="4k")
    advice = [f.recommendation for f in diagnose(profile).findings if f.kind == "layer_imbalance"]
    assert advice, [f.kind for f in diagnose(profile).findings]
    assert "largest: debug info" in advice[0], advice[0]
    assert "largest: files" not in advice[0]


def test_redirected_text_is_not_wrapped_at_80_columns(tmp_path: Path) -> None:
    out = run(str(CLAUDE_CODE), "--budget", "16k").stdout
    assert max(len(line) for line in out.splitlines()) > 100
    for line in out.splitlines():
        if "Return only what is new since the last call" in line:
            assert "instead of the whole, growing result" in line
