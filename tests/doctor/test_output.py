"""Diagnosis round trip and the faces: text, HTML (section and page)."""

from __future__ import annotations

from memlens.heap.doctor import Diagnosis, Finding, Hop, Remedy
from memlens.report.doctor_html import render_page, render_section
from memlens.report.doctor_text import render


def _sample() -> Diagnosis:
    return Diagnosis(
        target="svc/app.py",
        verdict="leak",
        reason="1 leak(s) with sustained growth",
        iterations=160,
        warmup=100,
        checkpoints=12,
        duration=1.5,
        rss_start=50 * 2**20,
        rss_end=245 * 2**20,
        findings=[
            Finding(
                category="growing_collection",
                site="assistant/consolidation.py:53",
                function="_store",
                stack=[
                    "assistant/consolidation.py:53 in _store",
                    "assistant/consolidation.py:41 in _consolidate",
                ],
                source="_cache[key] = Summary(text)",
                bytes_per_iteration=2048.0,
                objects_per_iteration=1.0,
                root="module assistant.consolidation → global _consolidation_cache",
                path=[
                    Hop("module assistant.consolidation", "root"),
                    Hop("global _consolidation_cache", "dict", "dict, 12,034 entries"),
                    Hop("['k1'] <script>", "Summary"),
                ],
                why="entries are added on every call and never removed",
                remedies=[
                    Remedy("bound it", "functools.lru_cache(maxsize=1000)", "5 min", 20_480_000),
                    Remedy("hold values weakly", "weakref.WeakValueDictionary()", "10 min", 1),
                ],
                library="cachetools",
                public_call="cachetools.cached",
            )
        ],
    )


def test_json_round_trip() -> None:
    diag = _sample()
    again = Diagnosis.from_json(diag.to_json())
    assert again == diag
    assert again.findings[0].path[1].detail == "dict, 12,034 entries"
    data = diag.to_dict()
    data["future_field"] = 1  # written by a newer memlens
    assert Diagnosis.from_dict(data) == diag


def test_text_report_has_every_part() -> None:
    text = render(_sample(), width=200)
    assert "LEAK  assistant/consolidation.py:53  growing collection  +2.0 KiB per call" in text
    assert "allocated at   assistant/consolidation.py:53 in _store  ← _consolidate:41" in text
    assert (
        "held by        module assistant.consolidation → global _consolidation_cache (dict, 12,034 entries)"
        in text
    )
    assert "why            entries are added on every call and never removed" in text
    assert "fix (5 min)    bound it: functools.lru_cache(maxsize=1000)" in text
    assert "frees ≈ 19.5 MiB" in text
    assert "or             hold values weakly" in text
    assert "cachetools, via cachetools.cached" in text


def test_no_leak_and_inconclusive_text() -> None:
    diag = Diagnosis(target="t.py", verdict="inconclusive", reason="ran out of budget")
    assert "INCONCLUSIVE" in render(diag) and "ran out of budget" in render(diag)
    assert "NO LEAK" in render(Diagnosis(target="t.py", verdict="no leak"))


def test_html_section_and_page_escape_and_render() -> None:
    data = _sample().to_dict()
    section = render_section(data)
    assert 'class="memlens-doctor"' in section
    assert "&lt;script&gt;" in section and "<script>" not in section
    assert "frees ≈ 19.5 MiB per 10,000 calls" in section
    page = render_page(data)
    assert page.startswith("<!doctype html>") and "memlens doctor: svc/app.py" in page
    empty = render_page(Diagnosis(target="x", verdict="no leak").to_dict())
    assert "NO LEAK" in empty


def test_multi_line_fix_prints_whole() -> None:
    diag = _sample()
    snippet = "import atexit\natexit.unregister(flush_handler)\nbus.close()"
    diag.findings[0].remedies.insert(0, Remedy("let go of the exit hook", snippet, "5 min", 10))
    text = render(diag, width=200)
    for line in snippet.splitlines():
        assert line in text
    one = _sample()
    assert "bound it: functools.lru_cache(maxsize=1000)" in render(one, width=200)
