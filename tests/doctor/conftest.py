"""Helpers for the leak doctor's tests: run corpus scenarios and the CLI for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "benchmarks", "leaks")


def line_of(path: str, text: str) -> str:
    """``file.py:N``: the first line of ``path`` that holds ``text`` (and is not the
    call asking for it), as a finding's site ends."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if text in line and "line_of(" not in line:
                return f"{os.path.basename(path)}:{lineno}"
    raise AssertionError(f"{text!r} is not in {path}")


def run_scenario(name: str) -> dict[str, Any]:
    """Diagnose one corpus scenario in a fresh interpreter (as the evaluation does)."""
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(CORPUS, "evaluate.py"),
            "--one",
            "memlens",
            os.path.join(CORPUS, name),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=CORPUS,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_cli(
    *args: str, cwd: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "memlens", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=full_env,
    )


@pytest.fixture
def corpus_expected():
    sys.path.insert(0, CORPUS)
    try:
        import evaluate  # type: ignore[import-not-found]

        yield evaluate
    finally:
        sys.path.remove(CORPUS)
