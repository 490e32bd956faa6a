"""Report faces: terminal text, the chart helpers, the HTML document, JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jinja2

from memlens.core.session import Session
from memlens.report import html as html_report
from memlens.report.common import bucket_max, memory_lines, short_path, thin
from memlens.report.json import render_json, write_json
from memlens.report.terminal import block_chart, render_text
from tests.sample_sessions import make_session


def test_text_summary_has_every_section() -> None:
    session = make_session("svc", samples=120)
    text = render_text(session, width=120)
    for needle in (
        "svc",
        session.id,
        "completed",
        "Peak RSS",
        "Final RSS",
        "Growth",
        "/min",
        "RSS over time",
        "Top 10 allocation sites",
        "module0.py:10",
        "handler_0",
        "engine",
        "Components",
        "Garbage collector",
    ):
        assert needle in text, needle
    # Exactly ten site rows, largest first.
    assert "module10.py" not in text and "module9.py:19" in text
    assert text.index("module0.py") < text.index("module1.py")


def test_text_summary_of_an_untraced_failed_run() -> None:
    session = Session(
        name="bare", kind="run", status="failed", traced=False, error="ValueError: boom"
    )
    session.exit_code = 1
    text = render_text(session)
    assert "failed" in text and "exit code 1" in text and "ValueError: boom" in text
    assert "off (--no-trace)" in text
    # a monitor (or a profile) was never run with --no-trace: do not say it was
    session.kind = "monitor"
    assert "--no-trace" not in render_text(session)
    assert "RSS over time" not in text  # no samples, no chart


def test_block_chart_rises_with_the_data() -> None:
    rows = block_chart([float(i) for i in range(100)], width=10, height=4)
    assert len(rows) == 4 and all(len(r) == 10 for r in rows)
    bottom, top = rows[-1], rows[0]
    assert bottom[0] == "▁" and bottom[-1] == "█"
    assert top[0] == " " and top[-1] == "█"
    flat = block_chart([5.0] * 20, width=20, height=3)
    assert flat[-1] == "▁" * 20 and flat[0] == " " * 20


def test_thin_keeps_peaks_and_ends() -> None:
    points = [(float(i), 1.0) for i in range(10_000)]
    points[5_123] = (5_123.0, 99.0)
    thinned = thin(points, 200)
    assert len(thinned) <= 202
    assert (5_123.0, 99.0) in thinned
    assert thinned[0] == points[0] and thinned[-1] == points[-1]
    assert [t for t, _ in thinned] == sorted(t for t, _ in thinned)
    assert bucket_max([1, 9, 2, 3], 2) == [9, 3]


def test_memory_lines_pick_recorded_fields() -> None:
    session = make_session(samples=10)
    lines = memory_lines(session)
    assert [line.field for line in lines] == ["rss", "traced"]
    assert lines[0].values == session.series.column("rss")


def test_short_path() -> None:
    assert short_path("/srv/app/x.py", cwd="/srv/app") == "x.py"
    assert short_path("/v/lib/python3.11/site-packages/rich/text.py", cwd="/") == "rich/text.py"
    assert short_path("/usr/lib/python3.12/json/decoder.py", cwd="/x") == "json/decoder.py"


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    session = make_session('evil </script><script>alert("x")</script>', samples=50)
    session.description = "<b>not bold</b>"
    page = html_report.render_html(session)
    # Offline: nothing is fetched from anywhere.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page
    assert '<script>alert("x")</script>' not in page
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page
    data = re.search(
        r'<script type="application/json" id="memlens-chart-data">(.*?)</script>', page, re.S
    )
    assert data is not None
    chart = json.loads(data.group(1))
    assert [line["field"] for line in chart["lines"]] == ["rss", "traced"]
    assert len(chart["lines"][0]["points"]) == 50
    assert page.count('<table class="sortable"') == 3
    assert session.id in page and "module11.py:21" in page  # every stored site


def test_long_series_are_thinned_for_the_page() -> None:
    session = make_session(samples=20_000)
    page = html_report.render_html(session)
    data = re.search(r'id="memlens-chart-data">(.*?)</script>', page, re.S)
    assert data is not None
    points = json.loads(data.group(1))["lines"][0]["points"]
    assert 1000 <= len(points) <= 1600


def test_analyses_use_their_partial_or_fall_back_to_json(tmp_path: Path) -> None:
    (tmp_path / "probe_section.html").write_text(
        "<div class='probe'>{{ probe.verdict }} / {{ analysis.size | bytes }} / {{ session.name }}</div>"
    )
    (tmp_path / "broken_section.html").write_text("{{ broken.missing() }}")
    env = html_report.environment().overlay(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(str(tmp_path)), html_report.environment().loader]
        )
    )
    session = make_session("withanalyses", samples=5)
    session.analyses = {
        "probe": {"verdict": "leaking", "size": 2048},
        "other": {"answer": 42},
        "broken": {},
    }
    page = html_report.render_html(session, env)
    assert "<div class='probe'>leaking / 2.0 KiB / withanalyses</div>" in page
    assert 'id="analysis-other"' in page and "&#34;answer&#34;: 42" in page
    assert 'id="analysis-broken"' in page and "failed to render" in page


def test_json_round_trip(tmp_path: Path) -> None:
    session = make_session(samples=30)
    session.analyses["doctor"] = {"findings": []}
    assert Session.from_json(render_json(session)) == session
    path = write_json(session, tmp_path / "s.json")
    assert Session.from_json(path.read_text()) == session
    assert not list(tmp_path.glob(".*.tmp"))


def test_write_html_atomically_replaces(tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    target.write_text("old")
    html_report.write_html(make_session(samples=5), target)
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
