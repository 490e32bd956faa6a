"""The keep-set and the extractive summarizer: exact strings, targets, trimming."""

from __future__ import annotations

from memlens.context.memory import ExtractiveSummarizer, extract, trim_output
from memlens.context.memory.keepset import is_verifiable
from memlens.context.tokens import get_counter

from .agent_sessions import check_anthropic, check_openai

COUNT = get_counter("cl100k_base").count

PROSE = (
    "We decided to use SQLAlchemy 2.0 async sessions instead of the legacy engine. "
    "You must not touch payments/ledger.py until the audit ends. "
    "The failing call is `reconcile_batches` in src/billing/jobs/reconcile.py, see "
    "https://runbooks.example/billing/stall-42 for the runbook. "
    "Set the retry limit of the billing worker to 7421. "
) + "The worker logs a line for every batch it processes and keeps going. " * 40

LOG = "\n".join(
    [f"tests/unit/test_{i}.py::test_case PASSED" for i in range(150)]
    + [
        "tests/unit/test_tenant.py::test_lookup FAILED",
        "E   KeyError: 'tenant_9127' not found in tenant_index",
    ]
    + [f"tests/unit/test_{i}.py::test_other PASSED" for i in range(150, 300)]
)


def test_keep_set_finds_each_kind_as_exact_strings() -> None:
    keeps = extract(PROSE)
    by_kind = {k.kind: [x.text for x in keeps if x.kind == k.kind] for k in keeps}
    assert any("decided to use SQLAlchemy" in t for t in by_kind["decision"])
    assert any("must not touch payments/ledger.py" in t for t in by_kind["constraint"])
    assert "https://runbooks.example/billing/stall-42" in by_kind["url"]
    assert "src/billing/jobs/reconcile.py" in by_kind["path"]
    assert "reconcile_batches" in by_kind["identifier"]
    assert any(t.endswith("7421") for t in by_kind["number"])
    assert is_verifiable(keeps, PROSE)
    errors = [k.text for k in extract(LOG, prose=False) if k.kind == "error"]
    assert any("KeyError: 'tenant_9127'" in e for e in errors)


def test_summary_keeps_the_keep_set_and_never_exceeds_its_target() -> None:
    summarizer = ExtractiveSummarizer()
    for target in (40, 80, 150, 400):
        summary = summarizer.summarize([PROSE], target, count=COUNT)
        assert COUNT(summary.text) <= target
        assert summary.kept, "something of the keep-set always fits"
        for keep in summary.kept:
            assert keep.text in summary.text and keep.text in PROSE
        assert {k.text for k in summary.kept} | {k.text for k in summary.dropped} == {
            k.text for k in extract(PROSE)
        }
    roomy = summarizer.summarize([PROSE], 200, count=COUNT)
    assert any(k.kind == "constraint" for k in roomy.kept)
    assert summarizer.summarize([PROSE], 200, count=COUNT).text == roomy.text  # deterministic


def test_tool_output_is_trimmed_head_and_tail_with_the_error_kept() -> None:
    summary = trim_output(LOG, 200, count=COUNT)
    assert COUNT(summary.text) <= 200
    lines = summary.text.splitlines()
    assert lines[0] == LOG.splitlines()[0]
    assert lines[-1] == LOG.splitlines()[-1]
    assert any("lines elided by memlens" in line for line in lines)
    assert "KeyError: 'tenant_9127' not found in tenant_index" in summary.text
    short = "one line of output"
    assert trim_output(short, 200, count=COUNT).text == short


def test_api_checks_catch_broken_lists() -> None:
    """The validity checks the invariant tests rely on do fail on broken lists."""
    orphan = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "user", "content": "y"},
    ]
    assert check_openai(orphan)
    assert check_openai([{"role": "tool", "tool_call_id": "zz", "content": "r"}])
    assert check_anthropic([{"role": "assistant", "content": "hi"}])
    assert check_anthropic(
        [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
            },
            {"role": "user", "content": [{"type": "text", "text": "no result"}]},
        ]
    )
