"""Real headless Chromium for tests of HTML reports.

``render(path)`` loads a file in Debian's Chromium, lets its scripts run, and returns
the resulting DOM as text; ``screenshot(path, png)`` writes a PNG. Tests that use
them carry ``@pytest.mark.browser`` and are skipped when no Chromium binary exists,
except where ``MEMLENS_REQUIRE_BROWSER`` is set (the test script sets it), where
they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--virtual-time-budget=5000",
]


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        if os.environ.get("MEMLENS_REQUIRE_BROWSER"):
            pytest.fail("headless Chromium is required here but not installed")
        pytest.skip("headless Chromium is not installed (apt-get install chromium)")
    return binary


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    binary = require_chromium()
    with tempfile.TemporaryDirectory(prefix="memlens-chromium-") as profile:
        return subprocess.run(
            [binary, *_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )


def render(html_file: Path) -> str:
    """Return the DOM of ``html_file`` after its scripts ran, as serialized HTML."""
    result = _run(["--dump-dom", Path(html_file).resolve().as_uri()])
    if result.returncode != 0:
        raise AssertionError(f"chromium failed: {result.stderr[-2000:]}")
    return result.stdout


def screenshot(html_file: Path, png: Path, size: str = "1280,1600") -> Path:
    """Write a PNG of ``html_file`` as Chromium draws it."""
    result = _run(
        [f"--screenshot={png}", f"--window-size={size}", Path(html_file).resolve().as_uri()]
    )
    if result.returncode != 0 or not Path(png).exists():
        raise AssertionError(f"chromium screenshot failed: {result.stderr[-2000:]}")
    return Path(png)
