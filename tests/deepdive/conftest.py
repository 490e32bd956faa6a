"""Shared pieces for the deep-dive tests: the corpus, its truth, a target process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "benchmarks" / "deepdive" / "corpus"
TRUTH = json.loads((CORPUS / "truth.json").read_text())
MIB = 1024 * 1024


@pytest.fixture
def target(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """The corpus's attach target, running until the test ends."""
    keepalive = tmp_path / "alive"
    keepalive.write_text("")
    proc = subprocess.Popen(
        [sys.executable, str(CORPUS / "attach_target.py"), str(keepalive)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("ready")
    try:
        yield proc
    finally:
        keepalive.unlink()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
