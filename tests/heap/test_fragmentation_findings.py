"""A fragmentation reading as a shared Diagnosis: category, amount, fix and saving."""

from __future__ import annotations

from memlens.core.findings import Diagnosis
from memlens.heap import fragmentation
from memlens.heap.fragmentation import Breakdown, MallocStats, PymallocStats
from memlens.heap.fragmentation_findings import as_diagnosis

MIB = 1024 * 1024


def _reading(free: int, trimmable: int, in_use: int = 40 * MIB) -> Breakdown:
    b = Breakdown(
        rss=in_use + free,
        python=PymallocStats(in_use=4 * MIB, free=MIB),
        malloc=MallocStats(in_use=in_use, free=free, trimmable=trimmable),
    )
    b.verdict, b.reason = fragmentation.verdict(b)
    return b


def test_an_allocator_holding_free_memory_is_one_finding_with_the_trim_saving() -> None:
    diag = as_diagnosis(_reading(free=100 * MIB, trimmable=95 * MIB), target="pid 42")
    assert diag.verdict == fragmentation.HOLDING
    (f,) = diag.findings
    assert f.category == "allocator_holding_free_memory" and f.amount == 100 * MIB
    assert f.remedies[0].saving == 95 * MIB and "malloc_trim" in f.remedies[0].snippet
    again = Diagnosis.from_dict(diag.to_dict())
    assert again.findings == diag.findings


def test_fragmented_and_compact_readings() -> None:
    frag = as_diagnosis(_reading(free=100 * MIB, trimmable=10 * MIB))
    assert frag.verdict == fragmentation.FRAGMENTED
    assert frag.findings[0].remedies[0].saving == 10 * MIB
    compact = as_diagnosis(_reading(free=MIB, trimmable=0))
    assert compact.verdict == fragmentation.COMPACT and compact.findings == []


def test_a_real_reading_of_this_process_converts() -> None:
    now = fragmentation.measure()
    diag = as_diagnosis(now)
    assert diag.verdict == now.verdict and diag.reason == now.reason
    assert all(f.unit == "bytes" and f.amount >= 0 for f in diag.findings)
