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
    assert paths[0] == "rss" and "traced" in paths
    assert dom.count('data-sortable="ready"') >= 2
    assert "record_summary" in dom


def test_empty_session_says_so_instead_of_drawing(tmp_path: Path) -> None:
    session = make_session(samples=2)
    session.series = type(session.series)()
    page = write_html(session, tmp_path / "empty.html")
    dom = render(page)
    assert 'data-drawn="empty"' in dom
    assert "No samples were recorded" in dom


def test_sparse_uss_pss_readings_are_steps_with_points(tmp_path: Path) -> None:
    """USS/PSS read every 30 s beside RSS every second: drawn as steps and dots, not
    straight lines that look like steady growth."""
    from memlens.core.session import Session

    session = Session(name="smaps", interval=1.0)
    for t in range(0, 181):
        values = {"rss": 100e6 + t * 1e5}
        if t % 30 == 0:
            values.update({"uss": 80e6 + t * 1e5, "pss": 85e6 + t * 1e5})
        session.series.append(float(t), values)
    session.duration = 180.0
    report = tmp_path / "smaps.html"
    write_html(session, report)
    dom = render(report)
    styles = dict(
        re.findall(r'data-field="(\w+)" d="[^"]+" stroke="[^"]+" data-style="(\w+)"', dom)
    )
    assert styles == {"rss": "line", "uss": "steps", "pss": "steps"}, styles
    assert len(re.findall(r'class="reading" data-field="uss"', dom)) == 7
    uss_path = re.search(r'data-field="uss" d="([^"]+)"', dom).group(1)
    assert "H" in uss_path and "V" in uss_path and "L" not in uss_path
