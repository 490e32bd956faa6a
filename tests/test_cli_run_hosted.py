"""Traced ``memlens run`` hosts the program one frame deep (see cli/_reexec.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from memlens.store import open_store
from tests.memlens_cli import cli_env, memlens, python

DEPTH_PROBE = (
    "import inspect, json, os\n"
    "print(json.dumps({'depth': len(inspect.stack()), 'pid': os.getpid()}))\n"
)


def _probe(tmp_path: Path) -> Path:
    script = tmp_path / "probe.py"
    script.write_text(DEPTH_PROBE)
    return script


def test_traced_program_runs_one_frame_deep(tmp_path: Path) -> None:
    script = _probe(tmp_path)
    bare = json.loads(python(script, cwd=tmp_path).stdout)
    run = memlens("run", "--no-html", "-q", "probe.py", db=tmp_path / "m.db")
    assert run.returncode == 0, run.stderr
    hosted = json.loads(run.stdout)
    assert hosted["depth"] == bare["depth"] + 1
    with open_store(tmp_path / "m.db") as store:
        (row,) = store.list()
        session = store.load(row.id)
    assert session.traced and session.metadata.pid == hosted["pid"]
    assert session.tags["command"].startswith("memlens run")


def test_same_pid_as_the_launched_command(tmp_path: Path) -> None:
    _probe(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "memlens", "run", "--no-html", "-q", "probe.py"],
        cwd=tmp_path,
        env=cli_env(tmp_path / "m.db"),
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = proc.communicate(timeout=120)
    assert json.loads(out)["pid"] == proc.pid


def test_reexec_can_be_switched_off(tmp_path: Path) -> None:
    _probe(tmp_path)
    deep = memlens(
        "run", "--no-html", "-q", "probe.py", db=tmp_path / "m.db", MEMLENS_RUN_REEXEC="0"
    )
    shallow = memlens("run", "--no-html", "-q", "probe.py", db=tmp_path / "m.db")
    assert json.loads(deep.stdout)["depth"] > json.loads(shallow.stdout)["depth"]
    with open_store(tmp_path / "m.db") as store:
        assert len(store.list()) == 2


def test_interpreter_flags_are_kept(tmp_path: Path) -> None:
    (tmp_path / "flags.py").write_text(
        "import sys\nprint(sys.flags.optimize, bool(sys.flags.dont_write_bytecode))\n"
    )
    run = subprocess.run(
        [sys.executable, "-O", "-B", "-m", "memlens", "run", "--no-html", "-q", "flags.py"],
        cwd=tmp_path,
        env=cli_env(tmp_path / "m.db"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.stdout.split() == ["1", "True"], run.stderr
    assert os.environ.get("MEMLENS_RUN_HOSTED") is None
