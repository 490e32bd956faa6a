"""HTML reports in a real headless Chromium: the chart is drawn, tables are live."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from memlens.report.html import write_html
from tests.browser import render
from tests.memlens_cli import REPO, memlens
from tests.sample_sessions import make_session

pytestmark = pytest.mark.browser


def test_run_on_the_bundled_example_renders_with_the_chart_drawn(tmp_path: Path) -> None:
    example = REPO / "examples" / "assistant_service.py"
    report = tmp_path / "report.html"
    run = memlens(
        "run", "--html", str(report), str(example), "--requests", "150", db=tmp_path / "m.db"
    )
    assert run.returncode == 0, run.stderr
    assert "assistant: done" in run.stdout
    assert "RSS over time" in run.stderr and "record_summary" in run.stderr
    dom = render(report)
    figure = re.search(r'<figure id="memory-chart"[^>]*>', dom)
    assert figure is not None and 'data-drawn="true"' in figure.group(0)
    paths = re.findall(r'<path class="series" data-field="(\w+)" d="M[^"]{20,}"', dom)
    assert paths[:2] == ["rss", "traced"]
    assert dom.count('data-sortable="ready"') >= 2
    assert "record_summary" in dom


def test_empty_session_says_so_instead_of_drawing(tmp_path: Path) -> None:
    session = make_session(samples=2)
    session.series = type(session.series)()
    page = write_html(session, tmp_path / "empty.html")
    dom = render(page)
    assert 'data-drawn="empty"' in dom
    assert "No samples were recorded" in dom
