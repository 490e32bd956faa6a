"""``memlens top``: pids, malformed URLs, and output that is not a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.memlens_cli import cli_env, memlens, one_line_error


@pytest.mark.parametrize("url", ["not a url", "http://[::1", "http://host:99999", "ftp://x"])
def test_malformed_urls_are_one_line(url: str, tmp_path: Path) -> None:
    out = memlens("top", url, "--once", db=tmp_path / "m.db")
    assert out.returncode == 2
    assert "invalid URL" in one_line_error(out.stderr)


def test_top_reads_a_pid_without_attaching(tmp_path: Path) -> None:
    out = memlens("top", str(os.getpid()), "--once", db=tmp_path / "m.db")
    assert out.returncode == 0, out.stderr
    assert f"pid {os.getpid()}" in out.stdout and "RSS" in out.stdout
    gone = memlens("top", "999999999", "--once", db=tmp_path / "m.db")
    assert "no process with id" in one_line_error(gone.stderr)


def test_live_mode_prints_views_when_stdout_is_a_pipe(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "memlens", "top", str(os.getpid()), "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(tmp_path / "m.db"),
    )
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        if "memlens top" in line:
            seen += 1
            if seen == 2:
                break
    proc.terminate()
    proc.wait(timeout=10)
    assert seen == 2  # two refreshes reached the pipe while top was still running
