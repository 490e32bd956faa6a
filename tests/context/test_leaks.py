"""Context leaks: repeated file reads, duplicated tool output, ever-growing results."""

from __future__ import annotations

from pathlib import Path

from memlens.context import ContextSession, find_leaks, profile_file


def test_transcript_leaks_in_window(uncompacted: Path) -> None:
    p = profile_file(uncompacted)
    by_kind = {leak.kind: leak for leak in p.leaks}
    assert set(by_kind) == {"repeated_file_read", "duplicated_tool_output", "growing_tool_result"}
    reads = by_kind["repeated_file_read"]
    assert reads.occurrences == 3 and reads.key == "file:/home/dev/shop/app.py"
    assert reads.tokens_in_window == reads.total_tokens == 2 * reads.sizes[-1]
    dup = by_kind["duplicated_tool_output"]
    assert dup.occurrences == 2 and dup.tokens_in_window == dup.sizes[0]
    grow = by_kind["growing_tool_result"]
    assert grow.occurrences == 4 and grow.sizes == sorted(grow.sizes)
    assert grow.tokens_in_window == sum(grow.sizes[:-1])
    assert "cat /var/log/shop/app.log" in grow.key
    assert all(leak.recommendation for leak in p.leaks)


def test_compacted_leaks_cost_nothing_now() -> None:
    from .conftest import CLAUDE_CODE

    p = profile_file(CLAUDE_CODE)
    assert p.leaks and all(leak.tokens_in_window == 0 and leak.total_tokens > 0 for leak in p.leaks)


def test_builder_leaks_and_thresholds() -> None:
    s = ContextSession()
    for _ in range(2):
        s.add_working("files", "content of a.py\n" * 100, key="file:a.py")
    assert find_leaks(s) == []  # two reads are normal (read, edit, re-read)
    s.add_working("files", "content of a.py\n" * 100, key="file:a.py")
    assert [leak.kind for leak in find_leaks(s)] == ["repeated_file_read"]
    s.add_working("debug_info", "ok", key="cmd:true")
    s.add_working("debug_info", "ok", key="cmd:true")
    assert "duplicated_tool_output" not in {leak.kind for leak in find_leaks(s)}  # tiny output
    for n in (100, 200, 300):
        s.add_working("debug_info", "line\n" * n, key="cmd:cat log")
    assert "growing_tool_result" in {leak.kind for leak in find_leaks(s)}
    item = s.add_long_term("consolidated", tokens=100, id="notes")
    for size in (300, 600, 900):
        s.update("notes", tokens=size)
    grow = [leak for leak in find_leaks(s) if leak.kind == "growing_item"]
    assert grow and grow[0].item_ids == [item.id] and grow[0].tokens_in_window == 800


def test_shrinking_results_are_not_a_leak() -> None:
    s = ContextSession()
    for n in (300, 200, 100):
        s.add_working("debug_info", "line\n" * n, key="cmd:cat log")
    assert find_leaks(s) == []
