"""The HTML report in a real headless Chromium: grid and timeline are drawn."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from memlens.context import diagnose, profile_file
from memlens.report.context_html import render_html
from tests.browser import render

from .conftest import CLAUDE_CODE


@pytest.mark.browser
def test_report_draws_grid_and_timeline(tmp_path: Path) -> None:
    profile = profile_file(CLAUDE_CODE)
    page = tmp_path / "context.html"
    page.write_text(render_html(profile, diagnose(profile)))
    dom = render(page)
    grid = re.search(r'<div id="grid"[^>]*>', dom)
    assert grid and 'data-drawn="true"' in grid.group(0)
    assert 'data-cells="400"' in grid.group(0)
    layer_cells = int(re.search(r'data-layer-cells="(\d+)"', grid.group(0)).group(1))
    assert layer_cells == round(profile.total_tokens / profile.budget * 400) or layer_cells >= 1
    assert 'data-layer="system_prompt"' in dom and 'data-layer="memory_files"' in dom
    canvas = re.search(r'<canvas id="timeline"[^>]*>', dom)
    assert canvas and 'data-drawn="true"' in canvas.group(0)
    points = int(re.search(r'data-points="(\d+)"', canvas.group(0)).group(1))
    assert points >= len(profile.timeline)
    assert 'data-rendered="true"' in dom
    assert "turns · growth" in dom  # the projection line was written by the script
