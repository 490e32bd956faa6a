"""RSS breakdown, verdicts on the corpus, and malloc_trim in this process and by pid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from memlens.heap import fragmentation as frag
from tests.deepdive.conftest import CORPUS, MIB, TRUTH
from tests.memlens_cli import memlens, one_line_error

pytestmark = pytest.mark.skipif(not frag.trim_available(), reason="needs glibc")


def test_debugmallocstats_parsing_reads_the_totals() -> None:
    text = """Small block threshold = 512, in 32 size classes.
# arenas allocated current         =                    4
4 arenas * 1048576 bytes/arena     =            4,194,304

# bytes in allocated blocks        =            3,504,736
# bytes in available blocks        =              334,064
16 unused pools * 16384 bytes      =              262,144
# bytes lost to pool headers       =               11,328
# bytes lost to quantization       =               16,496
# bytes lost to arena alignment    =               65,536
Total                              =            4,194,304
# bytes lost to arena map root     =              262,144
"""
    stats = frag.parse_debugmallocstats(text)
    assert stats.arenas == 4 and stats.arena_bytes == 4_194_304
    assert stats.in_use == 3_504_736
    assert stats.free == 334_064 + 262_144
    assert stats.overhead == 11_328 + 16_496 + 65_536


def test_trimmable_counts_free_chunks_in_the_unsorted_bin_too() -> None:
    # The shape of glibc 2.36's malloc_info: a big freed region still waiting in the
    # unsorted bin is listed as <unsorted>, not <size>; it was once left out, which put
    # the estimate at the small chunks' few KiB while a trim returned 64 MiB.
    page = frag._PAGE
    xml = """<malloc version="1">
<heap nr="0">
<sizes>
  <size from="33" to="33" total="66" count="2"/>
  <size from="8193" to="8193" total="8193" count="1"/>
  <unsorted from="64248945" to="64248945" total="64248945" count="1"/>
</sizes>
<total type="rest" count="4" size="64257204"/>
</heap>
<total type="rest" count="4" size="64257204"/>
</malloc>
"""
    assert frag.trimmable_estimate(xml) == (8193 - page) + (64248945 - page)


def test_measure_splits_this_process() -> None:
    b = frag.measure()
    assert b.rss > 0 and b.python is not None and b.malloc is not None
    assert 0 < b.python.in_use <= b.python.arena_bytes
    assert b.malloc.in_use > 0 and b.malloc.free >= 0
    assert 0 <= b.malloc.trimmable <= b.malloc.free
    data = b.to_dict()
    assert frag.Breakdown.from_dict(json.loads(json.dumps(data))).to_dict() == data


def test_pymalloc_reading_leaves_stderr_working(capfd: pytest.CaptureFixture[str]) -> None:
    frag.read_pymalloc()
    print("after", file=sys.stderr)
    err = capfd.readouterr().err
    assert "Small block threshold" not in err and "after" in err


def _run(case: str, db: Path) -> dict:
    report = db.parent / "session.json"
    out = memlens("run", "--no-html", "--json", str(report), "-q", str(CORPUS / case), db=db)
    assert out.returncode == 0, out.stderr
    return json.loads(report.read_text())["analyses"]["fragmentation"]


@pytest.mark.parametrize("case", sorted(TRUTH["fragmentation"]))
def test_run_tells_growth_from_fragmentation_on_the_corpus(case: str, tmp_path: Path) -> None:
    truth = TRUTH["fragmentation"][case]
    got = _run(case, tmp_path / "m.db")
    assert got["verdict"] == truth["verdict"], got["reason"]
    if "malloc_free_at_least_mib" in truth:
        assert got["malloc"]["free"] >= truth["malloc_free_at_least_mib"] * MIB
        assert got["python"]["in_use"] <= truth["python_live_at_most_mib"] * MIB
    if "trimmable_at_least_mib" in truth:
        assert got["malloc"]["trimmable"] >= truth["trimmable_at_least_mib"] * MIB


_TRIM_SELF = """
import json
from memlens.heap import fragmentation as frag
blocks = [bytes(1024) for _ in range(60_000)]
pin = bytes(1024)
del blocks
before = frag.measure(pymalloc=False)
result = frag.trim()
print(json.dumps({"trimmable": before.malloc.trimmable if before.malloc else None,
                  "returned": result.returned, "pause": result.pause}))
"""


def test_trim_self_returns_what_was_freed() -> None:
    # A fresh interpreter: in the long pytest process, where the freed blocks land
    # in the heap depends on every earlier test, and so does what a trim can return.
    out = subprocess.run(
        [sys.executable, "-c", _TRIM_SELF], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    trimmable = data["trimmable"]
    assert trimmable is not None and trimmable > 30 * MIB
    assert data["returned"] > 30 * MIB and data["pause"] > 0
    # the estimate made before the trim is close to what the trim gave back
    assert abs(data["returned"] - trimmable) < 0.25 * trimmable


def test_trim_cli_by_pid_and_self(tmp_path: Path) -> None:
    script = tmp_path / "holder.py"
    script.write_text(
        "import sys, time\n"
        "burst = [bytes(1024) for _ in range(80_000)]\n"
        "pin = bytes(1024)\n"
        "del burst\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        out = memlens("trim", str(proc.pid), "--json", db=tmp_path / "m.db")
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        assert data["returned"] > 40 * MIB and data["pause_seconds"] > 0
        assert proc.poll() is None  # the target runs on
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
    out = memlens("trim", "--self", db=tmp_path / "m.db")
    assert out.returncode == 0 and "malloc_trim(0) in this process returned" in out.stdout
    bad = memlens("trim", db=tmp_path / "m.db")
    assert bad.returncode == 2 and "process id or --self" in one_line_error(bad.stderr)


def _reading(free: int, trimmable: int, in_use: int = 50 * MIB) -> frag.Breakdown:
    now = frag.Breakdown(rss=in_use + free, malloc=frag.MallocStats(in_use=in_use, free=free))
    now.malloc.trimmable = trimmable  # type: ignore[union-attr]
    now.verdict, now.reason = frag.verdict(now)
    return now


def test_native_growth_verdict_tells_a_leak_from_the_allocator() -> None:
    # bytes in use account for the RSS growth: live native memory, a leak
    verdict, reason = frag.native_growth_verdict(90 * MIB, 100 * MIB, _reading(MIB, 0))
    assert verdict == frag.GROWING and "90.0 MiB" in reason
    # RSS grew, bytes in use did not: free chunks scattered between live ones
    verdict, reason = frag.native_growth_verdict(MIB, 200 * MIB, _reading(150 * MIB, 20 * MIB))
    assert verdict == frag.FRAGMENTED and "malloc_trim(0) would return only" in reason
    # ... or free memory at the top that a trim returns almost whole
    verdict, _ = frag.native_growth_verdict(0, 200 * MIB, _reading(150 * MIB, 140 * MIB))
    assert verdict == frag.HOLDING
    # a leak beside a fragmented allocator says both
    verdict, reason = frag.native_growth_verdict(
        120 * MIB, 150 * MIB, _reading(150 * MIB, 20 * MIB)
    )
    assert verdict == frag.GROWING and "scattered" in reason
    verdict, reason = frag.native_growth_verdict(None, 80 * MIB, _reading(MIB, 0))
    assert verdict == frag.COMPACT and "cannot be told" in reason


_NATIVE_DOCTOR = """
import json, os, sys
sys.path.insert(0, os.path.join({leaks!r}))
from leakapp import native
from memlens.heap.doctor import doctor

diag = doctor(lambda i: native.encode(i), name="native")
f = next(f for f in diag.findings if f.category == "native")
print(json.dumps({{"allocator": f.evidence.get("allocator"), "why": f.why}}))
"""


def test_the_doctors_native_finding_carries_the_allocator_verdict() -> None:
    leaks = str(CORPUS.parents[1] / "leaks")
    proc = subprocess.run(
        [sys.executable, "-c", _NATIVE_DOCTOR.format(leaks=leaks)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=leaks,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["allocator"] == frag.GROWING, got
    assert "Allocator: bytes in use grew by" in got["why"]
