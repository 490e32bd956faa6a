"""Every target form (file, module:function + --setup, API, watch block, check) and
bad input, through the real CLI in a subprocess where the CLI is concerned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memlens.core.errors import TargetError
from memlens.heap.doctor import LeakFound, check, doctor, watch
from tests.doctor.conftest import run_cli

LEAKY_MODULE = """
    _store = {}
    _ready = []

    def prepare():
        _ready.append(True)

    def handle(i):
        if not _ready:
            raise RuntimeError("setup did not run")
        _store[i] = "payload %d " % i * 40
"""


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


def test_cli_scenario_file_leak_exit_1_and_json(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "scenario.py",
        """
        held = []
        torn_down = []

        def setup():
            held.clear()

        def step(i):
            held.append(bytes(500) + str(i).encode())

        def teardown():
            torn_down.append(True)
    """,
    )
    proc = run_cli("scenario.py", "--format", "json", "--no-save", cwd=str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    diag = json.loads(proc.stdout)
    assert diag["verdict"] == "leak"
    assert diag["findings"][0]["site"] == "scenario.py:9"
    assert "held" in diag["findings"][0]["root"]
    assert diag["iterations"] > diag["warmup"] > 0


def test_cli_module_function_with_setup(tmp_path: Path) -> None:
    _write(tmp_path, "svc/__init__.py", "")
    _write(tmp_path, "svc/handlers.py", LEAKY_MODULE)
    proc = run_cli(
        "svc.handlers:handle",
        "--setup",
        "svc.handlers:prepare",
        "--format",
        "json",
        "--no-save",
        cwd=str(tmp_path),
    )
    assert proc.returncode == 1, proc.stderr
    diag = json.loads(proc.stdout)
    assert diag["findings"][0]["category"] == "growing_collection"
    assert "svc.handlers → global _store" in diag["findings"][0]["root"]


def test_cli_no_leak_exit_0_and_text(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "clean.py",
        """
        def step(i):
            data = [str(k) for k in range(50)]
            return len(data)
    """,
    )
    proc = run_cli("clean.py", "--no-save", cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "NO LEAK" in proc.stdout


def test_cli_saves_a_doctor_session(tmp_path: Path) -> None:
    _write(
        tmp_path, "scenario.py", "kept = []\ndef step(i):\n    kept.append('k' * 300 + str(i))\n"
    )
    db = tmp_path / "m.db"
    proc = run_cli("scenario.py", "--db", str(db), "--format", "json", cwd=str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    from memlens.store import open_store

    store = open_store(db)
    rows = store.list()
    session = store.load(rows[0].id)
    assert session.kind == "doctor"
    assert session.analyses["doctor"]["verdict"] == "leak"
    store.close()

    # Read back, it prints the findings as the doctor did.
    from memlens.heap.doctor import Diagnosis
    from memlens.report.doctor_text import render

    diag = Diagnosis.from_json(proc.stdout)
    want = [" ".join(ln.split()) for ln in render(diag, width=400).splitlines() if ln.strip()]
    for command in (["show", session.id], ["report", session.id, "-f", "text"]):
        shown = subprocess.run(
            [sys.executable, "-m", "memlens", *command, "--db", str(db)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "400"},
        )
        assert shown.returncode == 0, shown.stderr
        assert "Analyses attached" not in shown.stdout
        got = " ".join(shown.stdout.split())
        for line in want:  # every line of the doctor's report, wrapping aside
            assert line in got, line


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({}, ["missing.py"], "scenario file not found"),
        ({"broken.py": "import no_such_module_xyz\n"}, ["broken.py"], "No module named"),
        (
            {"raises.py": "def step(i):\n    raise ValueError('boom')\n"},
            ["raises.py"],
            "step raised at iteration 0: ValueError: boom",
        ),
        ({"nostep.py": "x = 1\n"}, ["nostep.py"], "defines no step(i)"),
        ({}, ["no_such_pkg_xyz.mod:fn"], "cannot import module"),
        ({"m.py": "def f(i):\n    pass\n"}, ["m:g"], "has no attribute 'g'"),
        (
            {"m.py": "def f(i):\n    pass\n"},
            ["m:f", "--setup", "m:nope"],
            "has no attribute 'nope'",
        ),
    ],
)
def test_cli_bad_input_is_one_line(
    tmp_path: Path, files: dict[str, str], args: list[str], message: str
) -> None:
    for name, body in files.items():
        _write(tmp_path, name, body)
    proc = run_cli(*args, "--no-save", cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]


_api_store: list[str] = []


def test_api_doctor_with_setup_and_teardown() -> None:
    calls: list[str] = []
    diag = doctor(
        lambda i: _api_store.append(f"api {i} " * 30),
        setup=lambda: calls.append("setup"),
        teardown=lambda: calls.append("teardown"),
        budget=15,
    )
    assert calls == ["setup", "teardown"]
    assert diag.verdict == "leak"
    assert "_api_store" in diag.findings[0].root
    assert diag.findings[0].function.startswith("test_api_doctor_with_setup_and_teardown")


def test_api_step_without_argument_and_no_leak() -> None:
    diag = doctor(lambda: sum(range(100)), budget=10)
    assert diag.verdict == "no leak"
    assert diag.findings == []


def test_api_step_that_raises() -> None:
    def step(i: int) -> None:
        if i == 7:
            raise KeyError("gone")

    with pytest.raises(TargetError, match="step raised at iteration 7: KeyError"):
        doctor(step, budget=10)


_watched: dict[int, bytes] = {}


def test_watch_block_form() -> None:
    # The budget is wall time: a loaded CI machine (load 10+ on 2 cores) needs more
    # than 15 s; the watch ends as soon as its verdict is in, so a quiet run is no longer.
    w = watch(budget=60)
    i = 0
    while not w.done:
        with w:
            _watched[i] = b"w" * 400 + bytes(str(i), "ascii")
        i += 1
    diag = w.diagnosis
    assert diag.verdict == "leak"
    assert "_watched" in diag.findings[0].root
    assert diag.iterations == i


_checked: list[str] = []


def test_check_raises_leak_found() -> None:
    with pytest.raises(LeakFound) as info:
        check(lambda i: _checked.append(f"c{i}" * 50), budget=15)
    assert info.value.diagnosis.verdict == "leak"
    assert info.value.exit_code == 1


_async_kept: list[str] = []


def test_api_async_step_runs_on_the_doctors_loop() -> None:
    import asyncio

    loops: set[int] = set()

    async def setup() -> None:
        loops.add(id(asyncio.get_running_loop()))

    async def step(i: int) -> None:
        loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0)
        _async_kept.append(f"async {i} " * 30)

    diag = doctor(step, setup=setup, budget=15)
    assert diag.verdict == "leak"
    assert "_async_kept" in diag.findings[0].root
    assert len(loops) == 1  # one loop for setup and every step


_slow: list[str] = []


def test_too_few_iterations_is_inconclusive_with_reason() -> None:
    diag = doctor(lambda i: _slow.append(f"s{i}" * 40), max_iterations=30, budget=10)
    assert diag.verdict == "inconclusive"
    assert "checkpoints" in diag.reason and diag.iterations == 30


def test_invalid_options_are_config_errors() -> None:
    from memlens.core.errors import ConfigError

    with pytest.raises(ConfigError, match="max_iterations"):
        doctor(lambda i: None, max_iterations=3)
    with pytest.raises(ConfigError, match="budget"):
        doctor(lambda i: None, budget=0)
