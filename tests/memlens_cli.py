"""Run the real ``memlens`` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli_env(db: Path, **extra: str) -> dict[str, str]:
    """The environment for a CLI test: its own database, no colours, a fixed width."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMLENS_")}
    env.update({"MEMLENS_DB": str(db), "NO_COLOR": "1", "COLUMNS": "120", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def memlens(
    *args: str, db: Path, cwd: Path | None = None, timeout: float = 120, **extra: str
) -> subprocess.CompletedProcess[str]:
    """``python -m memlens ARGS`` with ``MEMLENS_DB=db``; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "memlens", *args],
        cwd=cwd or db.parent,
        env=cli_env(db, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def python(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The same program run bare, for side-by-side comparisons."""
    return subprocess.run(
        [sys.executable, str(script), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def one_line_error(stderr: str) -> str:
    """Assert ``stderr`` is exactly one ``memlens: error:`` line; return it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    assert lines[0].startswith("memlens: error: "), lines[0]
    assert "Traceback" not in stderr
    return lines[0]
