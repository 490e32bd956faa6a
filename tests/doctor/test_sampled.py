"""The leak doctor on the sampling tracer (``--sample``, ``doctor(sample=...)``): real
leaks found at their line and root, look-alikes cleared, from the CLI and the API."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memlens.core.errors import ConfigError
from memlens.heap.doctor import doctor
from memlens.heap.doctor.targets import load
from memlens.heap.native_ext import load_extension
from tests.doctor.conftest import run_cli

needs_ext = pytest.mark.skipif(
    load_extension("_sampler") is None, reason="memlens._sampler is not built"
)

REGISTRY_LEAK = """
    class Session:
        def __init__(self, i):
            self.user = i
            self.token = "t%08d" % i * 40

    _sessions = {}

    def step(i):
        _sessions[i] = Session(i)
"""

# Each new node points at the previous one: no collection grows, so the leaked
# objects are found only through their sampled blocks (or the newest instances).
CHAIN_LEAK = """
    class Event:
        __slots__ = ("prev", "body")

        def __init__(self, prev, body):
            self.prev = prev
            self.body = body

    _last = None

    def step(i):
        global _last
        _last = Event(_last, ["x" * 64, i])
"""

BOUNDED_LOOKALIKE = """
    from collections import OrderedDict

    class Session:
        def __init__(self, i):
            self.user = i
            self.token = "t%08d" % i * 40

    _recent = OrderedDict()

    def step(i):
        _recent[i] = Session(i)
        if len(_recent) > 64:
            _recent.popitem(last=False)
"""


CLEAN = """
    def step(i):
        data = [str(k) for k in range(50)]
        return len(data)
"""


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def _diagnose(path: Path, **kwargs: object):
    target = load(str(path))
    return doctor(
        target.step,
        setup=target.setup,
        teardown=target.teardown,
        name=target.name,
        user_roots=target.user_roots,
        **kwargs,
    )


@needs_ext
def test_cli_sampled_finds_the_leak_at_its_line_and_root(tmp_path: Path) -> None:
    _write(tmp_path, "registry.py", REGISTRY_LEAK)
    proc = run_cli("--sample", "registry.py", "--format", "json", "--no-save", cwd=str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    diag = json.loads(proc.stdout)
    assert diag["verdict"] == "leak"
    first = diag["findings"][0]
    assert first["site"] == "registry.py:5"
    assert "global _sessions" in first["root"]
    assert any("sampled every 1.0 KiB" in n for n in diag["notes"])
    assert diag["details"]["sampling"]["interval_bytes"] == 1024


@needs_ext
def test_cli_sampled_calls_a_bounded_cache_no_leak(tmp_path: Path) -> None:
    _write(tmp_path, "bounded.py", BOUNDED_LOOKALIKE)
    proc = run_cli("--sample=2KiB", "bounded.py", "--no-save", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "NO LEAK" in proc.stdout
    assert "sampled every 2.0 KiB" in proc.stdout


def test_cli_bad_sample_interval_is_one_line(tmp_path: Path) -> None:
    _write(tmp_path, "bounded.py", BOUNDED_LOOKALIKE)
    proc = run_cli("--sample=lots", "bounded.py", "--no-save", cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "--sample" in proc.stderr


@needs_ext
def test_api_sampled_finds_a_chain_through_sampled_blocks(tmp_path: Path) -> None:
    path = _write(tmp_path, "chain.py", CHAIN_LEAK)
    diag = _diagnose(path, sample=True)
    assert diag.verdict == "leak", diag.reason
    first = diag.findings[0]
    assert first.site.endswith("chain.py:13")
    assert "_last" in (first.root or "")
    assert diag.details["sampling"]["interval_bytes"] == 1024


@needs_ext
def test_api_sampled_bounded_cache_is_not_a_leak(tmp_path: Path) -> None:
    # In the suite's process, after whatever ran before (it used to turn inconclusive
    # there: see the big-heap test below).
    path = _write(tmp_path, "bounded.py", BOUNDED_LOOKALIKE)
    diag = _diagnose(path, sample=4096)
    assert diag.verdict == "no leak", (diag.reason, diag.details, diag.notes)
    assert diag.details["sampling"]["interval_bytes"] == 4096


@needs_ext
def test_api_sampled_bounded_cache_is_not_a_leak_in_a_fresh_interpreter(tmp_path: Path) -> None:
    # As a service that calls it first thing would.
    path = _write(tmp_path, "bounded.py", BOUNDED_LOOKALIKE)
    probe = textwrap.dedent(
        f"""
        import json
        from tests.doctor.test_sampled import _diagnose
        from pathlib import Path
        diag = _diagnose(Path({str(path)!r}), sample=4096)
        print(json.dumps([diag.verdict, diag.reason, diag.details["sampling"]["interval_bytes"]]))
        """
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    verdict, reason, interval = json.loads(done.stdout.strip().splitlines()[-1])
    assert verdict == "no leak", reason
    assert interval == 4096


@needs_ext
def test_api_sampled_bounded_cache_beside_a_big_heap_is_not_a_leak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The state the suite left: a process that already holds a big heap (here 300k
    # objects, 200k of them containers), frozen by the doctor at the start. The
    # sampled run needs ~70 checkpoints; each used to count the frozen heap twice
    # (gc.get_freeze_count() walks it) and loop over its containers in Python, which
    # spent the budget and left the verdict inconclusive. Counted, not timed.
    held = [[k, k, k] for k in range(200_000)]
    counts = [0]
    real = gc.get_freeze_count

    def counting() -> int:
        counts[0] += 1
        return real()

    monkeypatch.setattr(gc, "get_freeze_count", counting)
    checkpoints: list[int] = []
    path = _write(tmp_path, "bounded.py", BOUNDED_LOOKALIKE)
    diag = _diagnose(path, sample=4096, progress=lambda e: checkpoints.append(e.iterations))
    monkeypatch.undo()
    assert len(held) == 200_000
    assert diag.verdict == "no leak", (diag.reason, diag.details, diag.notes)
    assert len(checkpoints) >= 20
    # Once when the run freezes the heap and once when it gives it back: never per
    # checkpoint.
    assert counts[0] <= 4, (counts[0], len(checkpoints))


@needs_ext
def test_a_run_too_short_to_see_small_growth_is_inconclusive(tmp_path: Path) -> None:
    path = _write(tmp_path, "clean.py", CLEAN)
    assert _diagnose(path, max_iterations=150).verdict == "no leak"  # exact: it can say
    diag = _diagnose(path, sample=True, max_iterations=150)
    # Not "no leak": growth of 64 B per call could not have shown in so few calls.
    assert diag.verdict == "inconclusive", (diag.reason, diag.findings, diag.notes)
    seen = diag.details["sampling"]["visible_bytes_per_call"]
    assert seen > 64


@needs_ext
def test_annotate_turns_a_clean_verdict_of_a_short_sampled_run_inconclusive() -> None:
    from memlens.heap.doctor.diagnosis import Diagnosis
    from memlens.heap.doctor.iterations import Options
    from memlens.heap.doctor.sampled import make_engine, needed_calls
    from memlens.heap.doctor.sites import CodeMap

    engine, note = make_engine(CodeMap(), Options(), None, 2048)
    assert note is None
    engine.warmup = 10
    for measured, verdict in ((100, "inconclusive"), (needed_calls(2048), "no leak")):
        engine.iterations = engine.warmup + measured
        diag = Diagnosis(target="t", verdict="no leak")
        engine.annotate(diag)
        assert diag.verdict == verdict, (measured, diag.reason)
        assert diag.details["sampling"]["measured_calls"] == measured
        assert ("would show" in diag.reason) == (verdict == "inconclusive")


def test_bad_sample_argument_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="sample interval"):
        doctor(lambda: None, sample=0)


def test_without_the_extension_the_sampled_doctor_runs_exact_and_says_so(
    tmp_path: Path,
) -> None:
    _write(tmp_path, "registry.py", REGISTRY_LEAK)
    proc = run_cli(
        "--sample",
        "registry.py",
        "--format",
        "json",
        "--no-save",
        cwd=str(tmp_path),
        env={"MEMLENS_NO_EXTENSIONS": "1"},
    )
    assert proc.returncode == 1, proc.stderr
    diag = json.loads(proc.stdout)
    assert diag["findings"][0]["site"] == "registry.py:5"
    assert any("used exact tracemalloc" in n for n in diag["notes"])
    assert "sampling" not in diag.get("details", {})
