"""Issue #15's big-setup cases: a ``setup()`` that builds a 500,000-entry table used
to end ``inconclusive`` (at 150k entries) or overrun its budget with no checkpoint
(at 500k). Both corpus cases must now get their verdict from the CLI: the leak (a
module list growing per call) at its line and root, the look-alike as no leak."""

from __future__ import annotations

import json
import os

from tests.doctor.conftest import CORPUS, run_cli

SCALE = os.path.join(CORPUS, "scale")


def _diagnose(name: str) -> tuple[int, dict[str, object]]:
    proc = run_cli(name, "-f", "json", "--no-save", cwd=SCALE)
    assert proc.returncode in (0, 1, 3), proc.stderr[-2000:]
    return proc.returncode, json.loads(proc.stdout)


def test_a_leak_beside_a_500k_entry_setup_table_is_found_at_its_line() -> None:
    code, report = _diagnose("leak_setup_dict_500k.py")
    assert code == 1 and report["verdict"] == "leak", report["reason"]
    findings = report["findings"]
    assert isinstance(findings, list) and len(findings) == 1
    first = findings[0]
    assert first["site"] == "leak_setup_dict_500k.py:28"
    assert first["category"] == "growing_collection"
    assert first["root"].endswith("global AUDIT")  # not the setup's TABLE
    assert report["checkpoints"]


def test_a_500k_entry_setup_table_alone_is_not_a_leak() -> None:
    code, report = _diagnose("ok_setup_dict_500k.py")
    assert code == 0 and report["verdict"] == "no leak", report["reason"]
    assert report["findings"] == []
