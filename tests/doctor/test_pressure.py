"""A step that keeps ~200 MB per call: a memory-pressure stop, then a verdict.

The doctor must neither swap nor exhaust the machine: it stops before the call that
would pass its memory limit and decides on the checkpoints it has (#14). A step
that only uses 200 MB for the length of a call is no leak.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

import memlens
from memlens.heap.doctor.pressure import DEFAULT_CAP
from tests.doctor.conftest import run_cli

STEP_BYTES = 200 * 1024 * 1024
KEEPS = """
_kept = []

def step(i):
    _kept.append(bytearray(200 * 1024 * 1024))
"""
TEMPORARY = """
def step(i):
    buf = bytearray(200 * 1024 * 1024)  # every page written: resident for the call
    buf[-1] = 1
    del buf
"""


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def _load(path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    """Import the scenario as a real module (its globals are then a named root)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, path.stem, module)  # removed again afterwards
    spec.loader.exec_module(module)
    return module.step


def _needs_memory(nbytes: int) -> None:
    # The default limit is a quarter of the available memory: below this the
    # default would take too few calls for any verdict (the report says so).
    if psutil.virtual_memory().available < nbytes:
        pytest.skip("not enough free memory on this machine for a 200 MB-per-call step")


def test_200_mb_per_call_is_a_leak_through_the_cli(tmp_path: Path) -> None:
    _needs_memory(4 * DEFAULT_CAP)
    _write(tmp_path, "keeps.py", KEEPS)
    proc = run_cli("keeps.py", "--no-save", "-f", "json", cwd=str(tmp_path))
    assert proc.returncode == 1, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    assert data["verdict"] == "leak"
    first = data["findings"][0]
    assert first["site"].endswith("keeps.py:5")
    assert "_kept" in first["root"]
    assert first["amount"] == pytest.approx(STEP_BYTES, rel=0.05)
    stopped = data["details"]["stopped"]
    assert stopped["cause"] == "memory_pressure"
    assert stopped["limit_source"] == "default"
    assert any("stopped for memory pressure" in note for note in data["notes"])
    assert "memory pressure" in data["reason"]
    # It stopped before the call that would pass the limit at the rate of the calls
    # before it: the steps never added more than the limit (give or take how much
    # one call differs from the previous one).
    assert data["rss_end"] - data["rss_start"] <= DEFAULT_CAP + STEP_BYTES // 10
    assert data["iterations"] < 12


def test_200_mb_per_call_through_the_api_honours_max_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = _load(_write(tmp_path, "keeps_api.py", KEEPS), monkeypatch)
    limit = 1800 * 1024 * 1024
    diag = memlens.doctor(step, max_memory="1800 MiB")  # type: ignore[arg-type]
    assert diag.verdict == "leak", (diag.reason, diag.notes)
    assert diag.findings[0].site.endswith("keeps_api.py:5")
    assert "_kept" in diag.findings[0].root
    assert diag.details["stopped"]["limit_bytes"] == limit
    assert diag.details["stopped"]["limit_source"] == "max_memory"
    assert diag.rss_end - diag.rss_start <= limit + STEP_BYTES // 10
    assert any("--max-memory limit of 1.8 GiB" in note for note in diag.notes)
    # Only Python objects grew: the doctor's own checkpoints are no native leak.
    assert [f.category for f in diag.findings] == ["growing_collection"]


def test_200_mb_used_only_during_the_call_is_no_leak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = _load(_write(tmp_path, "temporary.py", TEMPORARY), monkeypatch)
    # 35 calls: 3 of warm-up and 6 checkpoints, the fewest for a verdict.
    diag = memlens.doctor(step, max_iterations=35)  # type: ignore[arg-type]
    assert diag.verdict == "no leak", (diag.reason, diag.notes)
    assert "stopped" not in diag.details
    assert not any("memory pressure" in note for note in diag.notes)


def test_too_small_a_limit_says_so_instead_of_guessing(tmp_path: Path) -> None:
    _write(tmp_path, "keeps.py", KEEPS)
    proc = run_cli("keeps.py", "--no-save", "--max-memory", "700MiB", cwd=str(tmp_path))
    assert proc.returncode == 3, (proc.stdout[-2000:], proc.stderr[-2000:])
    assert "INCONCLUSIVE" in proc.stdout
    assert "raise --max-memory" in proc.stdout
    assert "stopped for memory pressure" in proc.stdout


@pytest.mark.parametrize("value", ["lots", "0", "-5MB"])
def test_bad_max_memory_is_one_line(tmp_path: Path, value: str) -> None:
    _write(tmp_path, "keeps.py", KEEPS)
    proc = run_cli("keeps.py", "--no-save", "--max-memory", value, cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "--max-memory" in proc.stderr


def test_default_limit_keeps_under_an_address_space_limit() -> None:
    # Under `ulimit -v`, the default takes at most half of what is left.
    code = textwrap.dedent(
        """
        import resource
        from memlens.heap.doctor.pressure import _address_space_headroom, default_allowance
        with open("/proc/self/statm") as fh:
            vms = int(fh.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (vms + 600 * 1024 * 1024, resource.RLIM_INFINITY))
        left = _address_space_headroom()
        print(left, default_allowance())
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    left, allowance = map(int, proc.stdout.split())
    assert 0 < left <= 600 * 1024 * 1024
    assert allowance <= left // 2
