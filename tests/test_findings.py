"""One findings vocabulary: doctor, context diagnosis and monitor alerts share it.

The fixtures under ``tests/fixtures/findings`` were written by memlens before the
schema was versioned (``doctor_v1.json`` by a real ``memlens doctor --format json``
run, ``context_v1.json`` by ``ContextDiagnosis.to_dict``, ``doctor_v1.txt`` the
doctor's terminal report of that JSON at the time); they must keep loading.
"""

from __future__ import annotations

import json
from pathlib import Path

from memlens.context.diagnose import ContextDiagnosis
from memlens.core import findings as core
from memlens.core.findings import SCHEMA_VERSION, TOKENS, Finding, Remedy
from memlens.core.session import COMPLETED, Session
from memlens.heap.doctor.diagnosis import Diagnosis
from memlens.heap.doctor.diagnosis import Finding as LeakFinding
from memlens.report.doctor_text import render
from memlens.report.findings_text import finding_block
from memlens.report.html import render_html
from memlens.store import open_store
from tests.service.helpers import MB, Workload, make_monitor, run_for

FIXTURES = Path(__file__).parent / "fixtures" / "findings"


def _old(name: str) -> dict:
    data = json.loads((FIXTURES / name).read_text())
    assert "schema_version" not in data  # written before the schema was versioned
    return data


def _text(renderable: object) -> str:
    import io

    from rich.console import Console

    console = Console(width=200, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_an_old_doctor_diagnosis_loads_as_the_shared_finding() -> None:
    old = _old("doctor_v1.json")
    diag = Diagnosis.from_dict(old)
    (f,) = diag.findings
    assert isinstance(f, Finding) and isinstance(f, LeakFinding)
    raw = old["findings"][0]
    assert (f.category, f.site, f.root) == (raw["category"], raw["site"], raw["root"])
    assert f.amount == f.bytes_per_iteration == raw["bytes_per_iteration"]
    assert (f.unit, f.per) == ("bytes", "iteration")
    assert f.signals == raw["evidence"] and f.p_value == raw["p_value"]
    assert [r.saving for r in f.remedies] == [r["frees_bytes"] for r in raw["remedies"]]
    assert [h.label for h in f.path] == [h["label"] for h in raw["path"]]
    assert (diag.iterations, diag.warmup, diag.verdict) == (
        old["iterations"],
        old["warmup"],
        "leak",
    )
    # The terminal report of the old JSON is what it was when the JSON was written.
    assert render(old, width=200) == (FIXTURES / "doctor_v1.txt").read_text()


def test_new_json_is_versioned_and_round_trips() -> None:
    diag = Diagnosis.from_dict(_old("doctor_v1.json"))
    data = diag.to_dict()
    assert data["schema_version"] == SCHEMA_VERSION
    finding = data["findings"][0]
    assert {"category", "severity", "amount", "unit", "per", "root", "path", "remedies"} <= set(
        finding
    )
    assert finding["remedies"][0]["unit"] == "bytes" and "saving" in finding["remedies"][0]
    assert Diagnosis.from_json(diag.to_json()) == diag
    # A newer memlens may add keys and bump the version: read what we know.
    data["schema_version"] = SCHEMA_VERSION + 1
    data["findings"][0]["future"] = {"x": 1}
    assert Diagnosis.from_dict(data) == diag


def test_an_old_doctor_session_in_a_real_store_still_loads_and_renders(tmp_path: Path) -> None:
    old = _old("doctor_v1.json")
    session = Session(name="doctor scenario.py", kind="doctor", status=COMPLETED)
    session.analyses["doctor"] = old
    store = open_store(tmp_path / "sessions.db")
    try:
        store.save(session)
        loaded = store.load(session.id)
    finally:
        store.close()
    assert loaded.analyses["doctor"] == old
    assert Diagnosis.from_dict(loaded.analyses["doctor"]) == Diagnosis.from_dict(old)
    page = render_html(loaded)
    assert 'class="memlens-doctor"' in page  # the section, not the raw-JSON fallback
    assert "scenario.py:5" in page and "frees ≈ 6.1 MiB per 10,000 calls" in page


def test_an_old_context_diagnosis_loads_as_the_shared_finding() -> None:
    old = _old("context_v1.json")
    diag = ContextDiagnosis.from_dict(old)
    assert diag.severity == old["severity"] == diag.verdict
    assert [f.kind for f in diag.findings] == [f["kind"] for f in old["findings"]]
    for f, raw in zip(diag.findings, old["findings"]):
        assert isinstance(f, Finding) and f.unit == TOKENS
        assert (f.title, f.recommendation, f.tokens) == (
            raw["title"],
            raw["recommendation"],
            raw["tokens"],
        )
        assert (f.symptom, f.count, f.evidence) == (raw["symptom"], raw["count"], raw["evidence"])
    assert diag.duration == old["duration_ms"] / 1000
    again = ContextDiagnosis.from_dict(diag.to_dict())
    assert again.findings == diag.findings and again.to_dict() == diag.to_dict()


def test_monitor_alerts_are_findings_in_the_session_and_its_report() -> None:
    work = Workload(lambda t: 300 * MB + t / 60 * MB)
    monitor = make_monitor(work).start(thread=False)
    try:
        assert run_for(monitor, work, 20 * 60)
        diag = monitor.diagnosis()
        session = monitor.to_session()
    finally:
        monitor.stop()
    (f,) = diag.findings
    assert diag.verdict == "leak" and f.category == "sustained_growth"
    assert (f.unit, f.per) == ("bytes", "second")
    assert 0.8 * MB / 60 < f.amount < 1.25 * MB / 60
    assert f.details["id"] == monitor.get_active_leaks()[0]["id"]
    stored = core.Diagnosis.from_dict(session.analyses["diagnosis"])
    assert stored.findings == diag.findings
    page = render_html(session)
    assert 'class="memlens-diagnosis"' in page and "sustained growth" in page


def test_one_terminal_block_for_every_producer() -> None:
    leak = Diagnosis.from_dict(_old("doctor_v1.json")).findings[0]
    context = ContextDiagnosis.from_dict(_old("context_v1.json")).findings[0]
    alert = Finding(
        category="sustained_growth",
        summary="process rss grows steadily",
        amount=17_476.0,
        per="second",
        remedies=[Remedy("Enable tracemalloc")],
    )
    texts = [_text(finding_block(f)) for f in (leak, context, alert)]
    assert texts[0].startswith("HIGH  scenario.py:5  growing collection  +636 B per iteration")
    assert "held by        module scenario → global _held" in texts[0]
    assert texts[1].startswith("HIGH  budget usage  13.2k tokens")
    assert "fix            Cut the largest layer first" in texts[1]
    assert texts[2].startswith("HIGH  sustained growth  +17.1 KiB per second")
    assert "what           process rss grows steadily" in texts[2]
