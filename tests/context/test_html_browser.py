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


@pytest.mark.browser
@pytest.mark.parametrize("ratio", [0.97, 0.9, 0.5])
def test_timeline_labels_never_overlap(tmp_path: Path, ratio: float) -> None:
    """The budget and auto-compaction labels used to sit at the same x, 4 px above
    their lines: with the compaction point close to the budget they were drawn on
    top of each other (#14). Every text label's box is checked in Chromium."""
    import dataclasses
    import html
    import json

    profile = profile_file(CLAUDE_CODE)
    profile = dataclasses.replace(profile, compaction_point=int(profile.budget * ratio))
    page = tmp_path / "context.html"
    page.write_text(render_html(profile, diagnose(profile)))
    dom = render(page)
    canvas = re.search(r'<canvas id="timeline"[^>]*>', dom)
    assert canvas is not None
    found = re.search(r'data-labels="([^"]*)"', canvas.group(0))
    assert found is not None
    boxes = json.loads(html.unescape(found.group(1)))
    texts = [b["text"] for b in boxes]
    assert any(t.startswith("budget ") for t in texts)
    assert any(t.startswith("auto-compaction ") for t in texts)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, (a, b)
