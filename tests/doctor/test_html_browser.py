"""The doctor's standalone HTML page, rendered by a real headless Chromium."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.browser import render, screenshot
from tests.doctor.conftest import run_cli


@pytest.mark.browser
def test_doctor_html_page_renders(tmp_path: Path) -> None:
    (tmp_path / "scenario.py").write_text(
        textwrap.dedent(
            """
            _registry = {}

            def step(i):
                _registry[i] = "<b>entry</b> %d " % i * 20
            """
        )
    )
    out = tmp_path / "doctor.html"
    proc = run_cli(
        "scenario.py", "--format", "html", "-o", str(out), "--no-save", cwd=str(tmp_path)
    )
    assert proc.returncode == 1, proc.stderr
    dom = render(out)
    assert "Leak doctor" in dom
    assert "LEAK" in dom and "scenario.py:5" in dom
    assert "global _registry" in dom
    assert "growing collection" in dom
    assert "frees ≈" in dom
    # User data in the report is escaped, never markup.
    assert "&lt;b&gt;" in dom or "<b>entry</b>" not in dom
    png = tmp_path / "doctor.png"
    screenshot(out, png)
    assert png.stat().st_size > 5000
