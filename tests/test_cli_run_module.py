"""``memlens run -m MODULE`` is hosted like a script (cli/_reexec.py): the module runs
as ``python -m`` runs it, at the bottom of the stack, with no memlens frame under its
allocations, whichever way sites are gathered (traced, ``--sample``, ``--no-trace``)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from memlens.core.session import Session
from memlens.store import open_store
from tests.memlens_cli import cli_env, memlens, one_line_error

MODES: dict[str, list[str]] = {
    "traced": [],
    "sampled": ["--sample", "--sample-interval", "4KiB"],
    "untraced": ["--no-trace"],
}
Run = subprocess.CompletedProcess[str]


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def bare_m(cwd: Path, *args: str, stdin: str = "", flags: tuple[str, ...] = ()) -> Run:
    """``python [flags] -m ARGS``, as the user would run the module without memlens."""
    return subprocess.run(
        [sys.executable, *flags, "-m", *args],
        cwd=cwd,
        env=cli_env(cwd / "unused.db"),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def memlens_m(cwd: Path, *args: str, stdin: str = "", **extra: str) -> Run:
    return subprocess.run(
        [sys.executable, "-m", "memlens", "run", "--no-html", "-q", *args],
        cwd=cwd,
        env=cli_env(cwd / "m.db", **extra),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def only_session(db: Path) -> Session:
    with open_store(db, create=False) as store:  # type: ignore[attr-defined]
        (row,) = store.list()
        return store.load(row.id)


# A package run with -m: its __init__ runs once, before __main__, while argv[0] is "-m";
# then __main__ is what runpy makes it.
PACKAGE_INIT = """
    import sys
    print("init argv0", sys.argv[0], "main file", hasattr(sys.modules["__main__"], "__file__"))
"""
PACKAGE_MAIN = '''
    """The tool's docstring."""
    import inspect, os, pickle, sys
    from . import helper

    class Point:
        pass

    print("name", __name__, "doc", __doc__, "package", __package__)
    print("file", __file__, "cached", __cached__, "loader", type(__loader__).__name__)
    print("spec", __spec__.name, __spec__.origin, __spec__.parent)
    print("argv", sys.argv, "path0 is cwd", sys.path[0] == os.getcwd())
    print("orig", sys.orig_argv[sys.orig_argv.index("-m"):])
    print("main", sys.modules["__main__"].__dict__ is globals(), "helper", helper.VALUE)
    print("hosting mark", os.environ.get("MEMLENS_RUN_HOSTED"))  # not passed on to children
    print("names", sorted(k for k in globals() if k.startswith("_")))
    print("pickle", type(pickle.loads(pickle.dumps(Point()))).__qualname__)
    print("stdin", sys.stdin.read().strip())
    bottom = sys._getframe()
    while bottom.f_back is not None:
        bottom = bottom.f_back
    print("STACK", len(inspect.stack()), bottom.f_code.co_filename, os.getpid(), file=sys.stderr)
'''


@pytest.mark.parametrize("mode", list(MODES))
def test_package_main_is_what_python_m_makes_it(tmp_path: Path, mode: str) -> None:
    write(tmp_path / "tool" / "__init__.py", PACKAGE_INIT)
    write(tmp_path / "tool" / "__main__.py", PACKAGE_MAIN)
    write(tmp_path / "tool" / "helper.py", "VALUE = 42\n")
    bare = bare_m(tmp_path, "tool", "a", "-b", stdin="from stdin\n")
    run = memlens_m(tmp_path, *MODES[mode], "-m", "tool", "a", "-b", stdin="from stdin\n")
    assert run.returncode == bare.returncode == 0, run.stderr
    assert run.stdout == bare.stdout  # the package's __init__ ran once, in the host
    assert "init argv0 -m main file False\n" in run.stdout
    assert f"argv ['{tmp_path / 'tool' / '__main__.py'}', 'a', '-b']" in run.stdout
    assert "stdin from stdin" in run.stdout
    # At the bottom of the stack (python -m has two runpy frames under the module)
    depth, bottom, pid = run.stderr.split("STACK ")[1].split()
    assert (depth, bottom) == ("1", str(tmp_path / "tool" / "__main__.py"))
    session = only_session(tmp_path / "m.db")
    assert session.name == "tool" and session.metadata.pid == int(pid)
    assert session.traced == (mode == "traced")


SYSTEM_EXIT = """
    import atexit, sys
    atexit.register(lambda: print("atexit ran", flush=True))
    kept = [bytearray(1000) for _ in range(100)]

    def stop(code):
        raise SystemExit(code)

    if sys.argv[1] == "module":
        raise SystemExit(3)
    if sys.argv[1] == "none":
        raise SystemExit
    if sys.argv[1] == "text":
        raise SystemExit("fatal: no config")
    stop(int(sys.argv[1]))
"""


@pytest.mark.parametrize(
    ("how", "code"), [("module", 3), ("4", 4), ("none", 0), ("0", 0), ("text", 1)]
)
def test_system_exit_keeps_its_code(tmp_path: Path, how: str, code: int) -> None:
    write(tmp_path / "jobs" / "__init__.py", "")
    write(tmp_path / "jobs" / "stops.py", SYSTEM_EXIT)
    bare = bare_m(tmp_path, "jobs.stops", how)
    run = memlens_m(tmp_path, "-m", "jobs.stops", how)
    assert run.returncode == bare.returncode == code, run.stderr
    assert run.stdout == bare.stdout == "atexit ran\n"
    assert run.stderr == bare.stderr
    session = only_session(tmp_path / "m.db")
    assert session.exit_code == code
    assert session.status == ("completed" if code == 0 else "failed")
    assert session.traced and any(s.filename.endswith("stops.py") for s in session.top_sites)


def _without_runpy(stderr: str) -> str:
    return "".join(
        line for line in stderr.splitlines(keepends=True) if "<frozen runpy>" not in line
    )


@pytest.mark.parametrize("where", ["module", "package"])
def test_uncaught_exception_shows_the_users_traceback(tmp_path: Path, where: str) -> None:
    init = 'raise RuntimeError("in the package")\n' if where == "package" else ""
    write(tmp_path / "svc" / "__init__.py", init)
    write(
        tmp_path / "svc" / "worker.py",
        """
        def handle():
            raise ValueError("boom")

        handle()
        """,
    )
    bare = bare_m(tmp_path, "svc.worker")
    run = memlens_m(tmp_path, "-m", "svc.worker")
    assert run.returncode == bare.returncode == 1
    # python -m's own two or three runpy frames aside, the same traceback
    assert run.stderr == _without_runpy(bare.stderr)
    assert "Traceback (most recent call last):\n" in run.stderr
    error = "RuntimeError: in the package" if where == "package" else "ValueError: boom"
    assert run.stderr.endswith(error + "\n")
    session = only_session(tmp_path / "m.db")
    assert session.status == "failed" and session.error == error


ALLOCATES = """
    import json, os, sys, tracemalloc


    def build():
        return [bytearray(1000) for _ in range(8000)]


    kept = build()
    if tracemalloc.is_tracing():
        stacks = [[[f.filename, f.lineno] for f in tracemalloc.get_object_traceback(kept[0])]]
    else:
        from memlens import _sampler

        # the sampled stacks whose innermost frame is the bytearray line (innermost first)
        stacks = [
            [list(f) for f in frames]
            for frames, *_ in _sampler.stacks()
            if frames and tuple(frames[0]) == (__file__, 6)
        ]
    print(json.dumps(stacks))
"""


@pytest.mark.parametrize("mode", ["traced", "sampled"])
def test_allocations_are_the_modules_with_no_memlens_frame(tmp_path: Path, mode: str) -> None:
    module = write(tmp_path / "alloc.py", ALLOCATES)
    run = memlens_m(tmp_path, *MODES[mode], "-m", "alloc")
    assert run.returncode == 0, run.stderr
    stacks = json.loads(run.stdout)
    assert stacks, "no recorded stack for the module's allocation"
    for stack in stacks:
        # build()'s line under the module's line 9, and nothing else: no runpy, no memlens
        assert sorted({tuple(f) for f in stack}) == [(str(module), 6), (str(module), 9)], stack
    session = only_session(tmp_path / "m.db")
    top = session.top_sites[0]
    assert (Path(top.filename).name, top.lineno, top.function) == ("alloc.py", 6, "build")
    # 8,000 bytearrays of 1,000 bytes (plus their headers): exact, or an estimate
    assert 8_000_000 <= top.size <= (8_700_000 if mode == "traced" else 11_000_000)


def test_ctrl_c_in_a_module_saves_an_interrupted_session(tmp_path: Path) -> None:
    write(
        tmp_path / "sleepy.py",
        """
        import time
        data = [bytes(1000) for _ in range(1000)]
        print("ready", flush=True)
        time.sleep(60)
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "memlens", "run", "--no-html", "-m", "sleepy"],
        cwd=tmp_path,
        env=cli_env(tmp_path / "m.db"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGINT
    assert "KeyboardInterrupt" in stderr and "saved to" in stderr
    assert only_session(tmp_path / "m.db").status == "interrupted"


def test_a_module_that_does_not_compile_fails_as_under_python(tmp_path: Path) -> None:
    # Not hostable (no code to wrap): it runs in memlens's process through runpy.
    write(tmp_path / "broken.py", "def (\n")
    bare = bare_m(tmp_path, "broken")
    run = memlens_m(tmp_path, "-m", "broken")
    assert run.returncode == bare.returncode == 1
    assert run.stderr.endswith("SyntaxError: invalid syntax\n")
    assert bare.stderr.endswith(run.stderr)
    assert only_session(tmp_path / "m.db").status == "failed"


@pytest.mark.parametrize(
    ("files", "target", "needle"),
    [
        ({"plain/__init__.py": "print('ran')\n"}, "plain", "a package without a __main__"),
        ({"space/notes.txt": ""}, "space", "a namespace package"),
        (
            {"pkg/__init__.py": "", "pkg/__main__.py": ""},
            "pkg.__main__.x",
            "'pkg.__main__' is not a package",
        ),
        ({}, ".rel", "relative module names not supported"),
    ],
)
def test_modules_python_m_refuses_are_one_line(
    tmp_path: Path, files: dict[str, str], target: str, needle: str
) -> None:
    for name, text in files.items():
        write(tmp_path / name, text)
    run = memlens("run", "-m", target, db=tmp_path / "m.db")
    assert run.returncode == 2
    assert needle in one_line_error(run.stderr)
    assert run.stdout == ""  # nothing of the package ran
    assert bare_m(tmp_path, target).returncode == 1  # python -m refuses them too


def test_a_package_importing_the_module_first_warns_as_runpy_does(tmp_path: Path) -> None:
    write(tmp_path / "dup" / "__init__.py", "from . import mod\n")
    write(tmp_path / "dup" / "mod.py", "print('ran as', __name__)\n")
    bare = bare_m(tmp_path, "dup.mod")
    run = memlens_m(tmp_path, "-m", "dup.mod")
    assert run.returncode == bare.returncode == 0, run.stderr
    assert run.stdout == bare.stdout == "ran as dup.mod\nran as __main__\n"
    warning = (
        "RuntimeWarning: 'dup.mod' found in sys.modules after import of package 'dup', but "
        "prior to execution of 'dup.mod'; this may result in unpredictable behaviour\n"
    )
    assert bare.stderr.endswith(": " + warning)
    # the same warning, placed at the module's first line rather than in runpy
    assert run.stderr.startswith(f"{tmp_path / 'dup' / 'mod.py'}:1: {warning}")


@pytest.mark.parametrize("ending", ["done", "exit", "raise"])
def test_a_module_its_package_moves_runs_where_python_m_finds_it(
    tmp_path: Path, ending: str
) -> None:
    # The package's __init__ puts another folder first on its __path__: python -m then
    # runs that folder's job.py, which only the import (not a look at the files) sees.
    write(
        tmp_path / "moved" / "__init__.py",
        "import os\n__path__.insert(0, os.path.join(os.path.dirname(__file__), 'other'))\n",
    )
    write(tmp_path / "moved" / "job.py", "print('the file on disk')\n")
    end = {"done": "kept = [1]", "exit": "raise SystemExit(3)", "raise": "raise ValueError('m')"}
    source = f"import sys\nprint(sys.argv)\n{end[ending]}\n"
    write(tmp_path / "moved" / "other" / "job.py", source)
    bare = bare_m(tmp_path, "moved.job", "x")
    run = memlens_m(tmp_path, "-m", "moved.job", "x")
    assert run.returncode == bare.returncode == {"done": 0, "exit": 3, "raise": 1}[ending]
    assert run.stdout == bare.stdout == f"['{tmp_path / 'moved' / 'other' / 'job.py'}', 'x']\n"
    assert run.stderr == _without_runpy(bare.stderr)
    session = only_session(tmp_path / "m.db")
    assert session.exit_code == run.returncode
