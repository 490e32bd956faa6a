"""Issue #15, part 1: a snapshot's filtering and attribution cost a constant per
*distinct traceback*, not per trace (the old per-trace ``fnmatch`` filter took 16 s
to stop a session holding 100,000 objects). Counted, not timed."""

from __future__ import annotations

import pytest

import memlens.heap.heap_meter as heap_meter
from memlens.heap.heap_meter import HeapMeter


def test_filtering_and_attribution_run_once_per_distinct_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    meter = HeapMeter(depth=10)
    meter.start()
    try:
        kept = [[i] for i in range(20_000)]  # 20,000 live blocks from one line
        kept += [{"i": i} for i in range(20_000)]
        snapshot = meter.snapshot()
    finally:
        meter.stop()
    assert snapshot is not None
    traces = len(snapshot.traces)
    distinct = len(snapshot.statistics("traceback"))
    assert traces > 40_000 and distinct < traces / 20

    calls = {"own": 0, "user": 0}
    own, user = heap_meter.is_own_frame, heap_meter.user_frame_index

    def counted_own(filename: str) -> bool:
        calls["own"] += 1
        return own(filename)

    def counted_user(frames: heap_meter.Frames) -> int:
        calls["user"] += 1
        return user(frames)

    monkeypatch.setattr(heap_meter, "is_own_frame", counted_own)
    monkeypatch.setattr(heap_meter, "user_frame_index", counted_user)
    groups = heap_meter.group_traces(snapshot)
    own_filter_calls = calls["own"]
    sites = heap_meter.sites_of_groups(groups)

    assert len(groups) <= distinct
    assert own_filter_calls <= distinct  # one look at each traceback's innermost frame
    assert calls["user"] == len(groups)  # one attribution per distinct traceback
    # the two lines above hold the 40,000 objects, each line one site
    here = [(key, acc.count) for key, acc in sites.items() if key[0] == __file__]
    assert sum(count for _, count in here) >= 40_000
    assert len(kept) == 40_000
