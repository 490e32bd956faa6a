import gc
import json
import os
import sys
import threading
import tracemalloc

import pytest

from memlens.heap.frames import ComponentMap, innermost_user_index, is_user_file
from memlens.heap.gc_meter import GcMeter
from memlens.heap.heap_meter import HeapMeter
from memlens.heap.process_meter import ProcessMeter


def test_process_meter_reads_real_memory():
    meter = ProcessMeter()
    before = meter.read()
    assert before["rss"] > 1024 * 1024
    assert before["vms"] >= before["rss"]
    assert before["peak_rss"] >= before["rss"]
    block = bytearray(64 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
    after = meter.read()
    assert after["rss"] - before["rss"] > 48 * 1024 * 1024
    del block


@pytest.mark.skipif(
    not os.path.exists("/proc/self/smaps_rollup"), reason="needs Linux smaps_rollup"
)
def test_detailed_read_is_rate_limited_and_capped():
    meter = ProcessMeter(smaps_interval=3600)
    first = meter.read_detailed()
    assert first["uss"] > 0 and first["pss"] > 0
    assert meter.read_detailed() == {}  # not due yet
    assert meter.read_detailed(force=True)["uss"] > 0
    capped = ProcessMeter(smaps_interval=0.0, smaps_max_rss=1)
    assert capped.read_detailed() == {}  # above the size cap: skipped


def test_psutil_fallback_matches_proc():
    meter = ProcessMeter()
    proc = meter.read()
    meter._use_proc = False
    fallback = meter.read()
    assert abs(fallback["rss"] - proc["rss"]) < 32 * 1024 * 1024
    assert fallback["peak_rss"] > 0


def test_user_file_detection():
    assert is_user_file(__file__)
    assert not is_user_file(json.__file__)
    assert not is_user_file(pytest.__file__)  # site-packages
    assert not is_user_file("<frozen importlib._bootstrap>")
    assert is_user_file("<stdin>")
    assert innermost_user_index([__file__, json.__file__]) == 0


def _allocate_via_json(n):
    return [json.dumps({"k": i, "pad": "x" * 200}) for i in range(n)]


def test_heap_meter_attributes_to_user_line_not_stdlib():
    was_tracing = tracemalloc.is_tracing()
    meter = HeapMeter(depth=25)
    meter.start()
    try:
        base = meter.snapshot()
        kept = _allocate_via_json(5000)
        snap = meter.snapshot()
        sites = meter.sites(snap, base, limit=5)
        assert meter.read()["traced"] > 0
    finally:
        meter.stop()
    assert tracemalloc.is_tracing() == was_tracing
    top = sites[0]
    assert top.filename == __file__
    assert top.function == "_allocate_via_json"
    assert top.size_diff > 5000 * 200
    assert top.count_diff >= 5000
    assert top.stack[0].startswith(f"{__file__}:")
    assert len(kept) == 5000


def test_component_attribution_by_module_and_path(tmp_path, monkeypatch):
    pkg = tmp_path / "shopapp"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "engine.py").write_text("def build(n):\n    return [str(i) * 50 for i in range(n)]\n")
    (pkg / "db.py").write_text("def rows(n):\n    return [bytes(100) for _ in range(n)]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import shopapp.db
    import shopapp.engine

    mapping = ComponentMap({"engine": "shopapp.engine", "storage": str(pkg / "db.py")})
    assert mapping.component_of(shopapp.engine.__file__) == "engine"
    assert mapping.component_of(shopapp.db.__file__) == "storage"
    assert mapping.component_of(__file__) is None

    meter = HeapMeter(
        depth=10, components={"engine": "shopapp.engine", "storage": str(pkg / "db.py")}
    )
    meter.start()
    try:
        a = shopapp.engine.build(3000)
        b = shopapp.db.rows(2000)
        totals = meter.component_totals(meter.snapshot())
    finally:
        meter.stop()
    assert totals["engine"][0] > 3000 * 50
    assert totals["storage"][0] > 2000 * 100
    del a, b
    sys.modules.pop("shopapp.engine"), sys.modules.pop("shopapp.db"), sys.modules.pop("shopapp")


class _Cycle:
    def __init__(self):
        self.me = self


def test_gc_meter_counts_per_generation():
    meter = GcMeter()
    assert meter.generations == len(gc.get_count())
    meter.start()
    try:
        for _ in range(100):
            _Cycle()
        gc.collect()
    finally:
        meter.stop()
    stats = meter.stats()
    assert len(stats) == meter.generations
    oldest = stats[-1]
    assert oldest.collections >= 1
    assert sum(s.collected for s in stats) >= 100
    assert oldest.pause_total > 0 and oldest.pause_max > 0
    assert sum(oldest.pause_histogram.values()) == oldest.collections
    assert meter.read()["gc_collections"] == sum(s.collections for s in stats)
    before = meter.read()["gc_collections"]
    gc.collect()  # stopped: no longer counted
    assert meter.read()["gc_collections"] == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_process_meter_follows_a_forked_child():
    meter = ProcessMeter()
    meter.read()  # opens the descriptor in the parent
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            # A child that allocates 64 MiB must see its own RSS, not the parent's.
            before = meter.read()["rss"]
            block = bytearray(64 * 1024 * 1024)
            block[::4096] = b"x" * len(block[::4096])
            after = meter.read()["rss"]
            ok = meter.pid == os.getpid() and after - before > 48 * 1024 * 1024
            os.write(write_fd, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write_fd)
    answer = os.read(read_fd, 2)
    os.waitpid(pid, 0)
    assert answer == b"ok"
    assert meter.pid == os.getpid()


def test_grouping_matches_tracemalloc_statistics_and_drops_own_blocks():
    from memlens.core.series import Series
    from memlens.heap.frames import MEMLENS_DIR
    from memlens.heap.heap_meter import group_traces

    meter = HeapMeter(depth=10)
    meter.start()
    try:
        series = Series(raw_capacity=10_000)
        for i in range(3000):
            series.append(float(i), {"rss": float(i * 4096)})  # memlens's own blocks
        kept = _allocate_via_json(2000)
        snap = meter.snapshot()
        assert snap is not None
        groups = group_traces(snap)
        sites = meter.group_by_site(snap)
    finally:
        meter.stop()

    # Same totals as the stdlib's own grouping, less the blocks allocated in memlens
    # or on its behalf (through a library, memlens below and no user frame between).
    def on_memlens_behalf(tb: tracemalloc.Traceback) -> bool:
        for frame in reversed(tb):  # most recent first
            if frame.filename.startswith(MEMLENS_DIR):
                return True
            if not frame.filename.startswith("<") and is_user_file(frame.filename):
                return False
        return all(f.filename == threading.__file__ for f in tb)  # a thread's start-up

    stats = [s for s in snap.statistics("traceback") if not on_memlens_behalf(s.traceback)]
    assert sum(g[1] for g in groups) == sum(s.size for s in stats)
    assert sum(g[2] for g in groups) == sum(s.count for s in stats)
    assert len(groups) == len(stats)
    assert not [k for k in sites if k[0].startswith(MEMLENS_DIR)]
    for acc in sites.values():
        assert not [f for f in acc.stack if f.startswith(MEMLENS_DIR)]
    assert any(k[0] == __file__ for k in sites)
    assert len(kept) == 2000 and len(series) > 0


def test_function_name_respects_indentation(tmp_path):
    from memlens.heap.heap_meter import _enclosing_function

    source = (
        "def outer():\n"  # 1
        "    def inner():\n"  # 2
        "        return [1]\n"  # 3
        "    data = [0] * 10\n"  # 4: in outer, not in the sibling inner()
        "    for i in range(3):\n"  # 5
        "        data.append(i)\n"  # 6
        "    return data\n"  # 7
        "\n"  # 8
        "class K:\n"  # 9
        "    attr = [1, 2]\n"  # 10
        "    async def meth(self):\n"  # 11
        "        x = (\n"  # 12
        "  1)\n"  # 13: a continuation line, oddly indented
        "top = [2]\n"  # 14
    )
    path = tmp_path / "shapes.py"
    path.write_text(source)
    meter = HeapMeter()
    expected = {3: "inner", 4: "outer", 6: "outer", 7: "outer", 10: "<module>", 12: "meth"}
    expected[14] = "<module>"
    for line, name in expected.items():
        assert meter.function_name(str(path), line) == name, line
    assert _enclosing_function(source.splitlines(True), 99) == "<module>"


def test_overlapping_sessions_share_tracing():
    from memlens.profiling import Profiler

    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc already on: nothing for memlens to share")
    a, b = Profiler(interval=0.5), Profiler(interval=0.5)
    a.start()
    b.start()
    first = _allocate_via_json(2000)
    a.stop()
    assert tracemalloc.is_tracing()  # B still needs it
    second = _allocate_via_json(3000)
    session_b = b.stop()
    assert not tracemalloc.is_tracing()  # the last one out stops what memlens started
    top = session_b.top_sites[0]
    assert top.function == "_allocate_via_json" and top.count_diff >= 5000
    assert a.session is not None and a.session.top_sites[0].count_diff >= 2000
    assert len(first) + len(second) == 5000
