"""Traced ``memlens run`` hosts the program at the bottom of the stack, as
``python script.py`` runs it (see cli/_reexec.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memlens.store import open_store
from tests.memlens_cli import cli_env, memlens, python

DEPTH_PROBE = (
    "import inspect, json, os, sys\n"
    "bottom = sys._getframe()\n"
    "while bottom.f_back is not None:\n"
    "    bottom = bottom.f_back\n"
    "print(json.dumps({'depth': len(inspect.stack()), 'pid': os.getpid(),\n"
    "                  'bottom': bottom.f_code.co_filename}))\n"
)


def _probe(tmp_path: Path) -> Path:
    script = tmp_path / "probe.py"
    script.write_text(DEPTH_PROBE)
    return script


def test_traced_program_runs_at_the_bottom_of_the_stack(tmp_path: Path) -> None:
    script = _probe(tmp_path)
    bare = json.loads(python(script, cwd=tmp_path).stdout)
    run = memlens("run", "--no-html", "-q", "probe.py", db=tmp_path / "m.db")
    assert run.returncode == 0, run.stderr
    hosted = json.loads(run.stdout)
    # No bootstrap frame under the program: tracemalloc records what it records
    # under `python -X tracemalloc script.py`.
    assert hosted["depth"] == bare["depth"] == 1
    assert hosted["bottom"] == bare["bottom"] == str(script)
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


MAIN_PROBE = textwrap.dedent(
    '''
    """The probe's docstring."""
    from __future__ import annotations

    import os, pickle, sys

    class Point:
        pass

    x: int = 3
    print("file", __file__, "doc", __doc__, "name", __name__)
    print("loader", type(__loader__).__name__, "spec", __spec__, "cached", __cached__)
    print("annotations", __annotations__, "builtins", type(__builtins__).__name__)
    print("argv", sys.argv, "path0", sys.path[0] == os.path.dirname(os.path.realpath(__file__)))
    print("main", sys.modules["__main__"].__dict__ is globals())
    print("names", sorted(k for k in globals() if k.startswith("_")))
    print("pickle", type(pickle.loads(pickle.dumps(Point()))).__qualname__)
    print("stdin", sys.stdin.read().strip())
    '''
)


def test_main_module_is_what_python_makes_it(tmp_path: Path) -> None:
    script = tmp_path / "main_probe.py"
    script.write_text(MAIN_PROBE)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = cli_env(tmp_path / "m.db", TMPDIR=str(tmp))
    commands = {
        "bare": [sys.executable, "main_probe.py", "a", "-b"],
        "memlens": [sys.executable, "-m", "memlens", "run", "--no-html", "-q"]
        + ["main_probe.py", "a", "-b"],
    }
    out = {
        name: subprocess.run(
            cmd, cwd=tmp_path, env=env, input="from stdin\n", capture_output=True, text=True
        )
        for name, cmd in commands.items()
    }
    assert out["memlens"].returncode == out["bare"].returncode == 0, out["memlens"].stderr
    assert out["memlens"].stdout == out["bare"].stdout
    assert "stdin from stdin" in out["memlens"].stdout
    assert list(tmp.iterdir()) == []  # the one-off compiled script is gone


SYSTEM_EXIT = textwrap.dedent(
    """
    import atexit, sys
    atexit.register(lambda: print("atexit ran", flush=True))
    kept = [bytearray(1000) for _ in range(100)]

    def stop(code):
        raise SystemExit(code)

    if sys.argv[1] == "module":
        raise SystemExit(5)
    if sys.argv[1] == "none":
        raise SystemExit
    stop(int(sys.argv[1]))
    """
)


@pytest.mark.parametrize(("how", "code"), [("module", 5), ("4", 4), ("none", 0), ("0", 0)])
def test_raise_system_exit_keeps_its_code(tmp_path: Path, how: str, code: int) -> None:
    # The pitfall of hooks outside the program's frame: the interpreter consumes a
    # SystemExit before any hook sees its code.
    (tmp_path / "stops.py").write_text(SYSTEM_EXIT)
    bare = python(tmp_path / "stops.py", how, cwd=tmp_path)
    run = memlens("run", "--no-html", "-q", "stops.py", how, db=tmp_path / "m.db")
    assert run.returncode == bare.returncode == code, run.stderr
    assert run.stdout == bare.stdout == "atexit ran\n"
    assert run.stderr == bare.stderr == ""
    with open_store(tmp_path / "m.db") as store:
        (row,) = store.list()
        session = store.load(row.id)
    assert session.exit_code == code
    assert session.status == ("completed" if code == 0 else "failed")
    assert session.traced and any(s.filename.endswith("stops.py") for s in session.top_sites)
