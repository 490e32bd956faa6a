"""``memlens run`` in real subprocesses: pass-through, outcomes, outputs, bad input."""

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
from tests.memlens_cli import cli_env, memlens, one_line_error, python


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


def only_session(db: Path) -> Session:
    with open_store(db, create=False) as store:  # type: ignore[attr-defined]
        rows = store.list()
        assert len(rows) == 1, rows
        return store.load(rows[0].id)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "memlens.db"


PASS_THROUGH = """
    import os, sys
    print("argv:", sys.argv)
    print("name:", __name__)
    print("path0 is script dir:", sys.path[0] == os.path.dirname(os.path.realpath(__file__)))
    print("to stderr", file=sys.stderr)
    import helper
    print("helper:", helper.VALUE)
    kept = [bytearray(4096) for _ in range(500)]
    sys.exit(int(sys.argv[1]))
"""


def test_stdout_args_and_exit_code_pass_through(tmp_path: Path, db: Path) -> None:
    script = write(tmp_path / "prog.py", PASS_THROUGH)
    write(tmp_path / "helper.py", "VALUE = 42\n")
    bare = python(script, "3", "--flag", "-m", "x", cwd=tmp_path)
    run = memlens("run", "--no-html", "prog.py", "3", "--flag", "-m", "x", db=db)
    assert run.returncode == bare.returncode == 3
    # stdout is the program's alone, byte for byte.
    assert run.stdout == bare.stdout.replace(str(script), "prog.py")
    assert "argv: ['prog.py', '3', '--flag', '-m', 'x']" in run.stdout
    assert "name: __main__" in run.stdout
    assert "path0 is script dir: True" in run.stdout
    assert "helper: 42" in run.stdout
    assert run.stderr.startswith("to stderr\n")
    assert "Peak RSS" in run.stderr and "saved to" in run.stderr
    session = only_session(db)
    assert session.kind == "run" and session.name == "prog.py"
    assert session.status == "failed" and session.exit_code == 3
    assert session.metadata.argv == ["prog.py", "3", "--flag", "-m", "x"]
    assert session.series.count >= 2


def test_exit_zero_is_completed(tmp_path: Path, db: Path) -> None:
    write(tmp_path / "prog.py", PASS_THROUGH)
    write(tmp_path / "helper.py", "VALUE = 1\n")
    run = memlens("run", "--no-html", "-q", "prog.py", "0", db=db)
    assert run.returncode == 0
    assert run.stderr == "to stderr\n"  # --quiet: nothing from memlens
    session = only_session(db)
    assert session.status == "completed" and session.exit_code == 0
    assert session.traced and session.top_sites
    # The program's own line is among the top sites (attributed to user code).
    assert any(s.filename.endswith("prog.py") for s in session.top_sites)


def test_uncaught_exception_prints_python_traceback(tmp_path: Path, db: Path) -> None:
    script = write(
        tmp_path / "boom.py",
        """
        def inner():
            raise ValueError("boom")

        print("before")
        inner()
        """,
    )
    bare = python(script, cwd=tmp_path)
    run = memlens("run", "--no-html", "boom.py", db=db)
    assert run.returncode == bare.returncode == 1
    assert run.stdout == "before\n"
    # The traceback is exactly Python's: no memlens or runpy frames.
    assert run.stderr.startswith(bare.stderr)
    assert "memlens" not in run.stderr.split("ValueError: boom")[0]
    session = only_session(db)
    assert session.status == "failed"
    assert session.error == "ValueError: boom"
    assert session.exit_code == 1


def test_syntax_error_reported_like_python(tmp_path: Path, db: Path) -> None:
    script = write(tmp_path / "bad.py", "def (\n")
    bare = python(script, cwd=tmp_path)
    run = memlens("run", "--no-html", "-q", "bad.py", db=db)
    assert run.returncode == bare.returncode == 1
    assert run.stderr == bare.stderr
    assert only_session(db).status == "failed"


def test_non_integer_system_exit(tmp_path: Path, db: Path) -> None:
    write(tmp_path / "msg.py", "import sys\nsys.exit('fatal: no config')\n")
    run = memlens("run", "--no-html", "-q", "msg.py", db=db)
    assert run.returncode == 1
    assert run.stderr == "fatal: no config\n"


def test_run_module_with_args(tmp_path: Path, db: Path) -> None:
    pkg = tmp_path / "tool"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write(
        pkg / "__main__.py",
        """
        import os, sys
        print(__name__, __spec__.name, os.path.basename(sys.argv[0]), sys.argv[1:])
        print(sys.path[0] == os.getcwd())
        """,
    )
    run = memlens("run", "--no-html", "-q", "-m", "tool", "--verbose", "x", db=db)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "__main__ tool.__main__ __main__.py ['--verbose', 'x']\nTrue\n"
    assert only_session(db).name == "tool"


def test_ctrl_c_saves_an_interrupted_session(tmp_path: Path, db: Path) -> None:
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
        [sys.executable, "-m", "memlens", "run", "--no-html", "sleepy.py"],
        cwd=tmp_path,
        env=cli_env(db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    time.sleep(0.3)  # let a few samples land
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    # Like Python itself: the process ends by SIGINT after printing the traceback.
    assert proc.returncode == -signal.SIGINT
    assert "KeyboardInterrupt" in stderr
    assert "saved to" in stderr
    session = only_session(db)
    assert session.status == "interrupted"
    assert session.error == "KeyboardInterrupt"


def test_json_and_html_outputs(tmp_path: Path, db: Path) -> None:
    write(tmp_path / "ok.py", "x = [str(i) * 10 for i in range(20000)]\nprint('ok')\n")
    run = memlens("run", "--json", "out/s.json", "ok.py", db=db)
    # out/ does not exist: the JSON write fails, so memlens fails though the program didn't …
    assert run.returncode == 2
    assert "memlens: error: cannot write" in run.stderr
    assert "No such file or directory\n" in run.stderr
    session = only_session(db)  # … but the session is stored anyway
    default_html = tmp_path / f"memlens-report-{session.id}.html"
    assert default_html.is_file()

    (tmp_path / "out").mkdir()
    run = memlens("run", "--json", "out/s.json", "--html", "out/r.html", "ok.py", db=db)
    assert run.returncode == 0, run.stderr
    saved = Session.from_json((tmp_path / "out" / "s.json").read_text())
    with open_store(db) as store:  # type: ignore[attr-defined]
        assert store.load(saved.id) == saved
    html = (tmp_path / "out" / "r.html").read_text()
    assert saved.id in html and 'id="memory-chart"' in html

    run = memlens("run", "--no-html", "ok.py", db=db)
    assert run.returncode == 0
    assert len(list(tmp_path.glob("memlens-report-*.html"))) == 1


def test_no_trace_and_options(tmp_path: Path, db: Path) -> None:
    write(
        tmp_path / "ok.py", "import time\nx = [bytes(100) for _ in range(1000)]\ntime.sleep(0.2)\n"
    )
    run = memlens(
        "run", "--no-trace", "--no-html", "--interval", "20ms", "--name", "fast", "ok.py", db=db
    )
    assert run.returncode == 0, run.stderr
    session = only_session(db)
    assert session.name == "fast"
    assert not session.traced and session.top_sites == []
    assert session.interval == pytest.approx(0.02)
    assert "traced" not in session.series.fields
    assert session.series.count >= 5


def test_components_are_attributed(tmp_path: Path, db: Path) -> None:
    write(
        tmp_path / "engine.py",
        "STORE = []\ndef work():\n    STORE.extend(bytes(2000) for _ in range(500))\n",
    )
    write(tmp_path / "app.py", "import engine\nengine.work()\n")
    run = memlens("run", "--no-html", "-q", "--component", "core=engine", "app.py", db=db)
    assert run.returncode == 0, run.stderr
    session = only_session(db)
    usage = {c.name: c for c in session.components}
    assert usage["core"].current >= 500 * 2000


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "missing.py"], "can't open file 'missing.py'"),
        (["run", "-m", "no_such_module_xyz"], "no module named 'no_such_module_xyz'"),
        (["run", "--interval", "0", "ok.py"], "invalid --interval '0'"),
        (["run", "--interval", "soon", "ok.py"], "invalid --interval 'soon'"),
        (["run", "--component", "oops", "ok.py"], "invalid --component 'oops'"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, db: Path, args: list[str], needle: str) -> None:
    write(tmp_path / "ok.py", "print('ran')\n")
    run = memlens(*args, db=db)
    assert run.returncode != 0
    assert needle in one_line_error(run.stderr)
    assert run.stdout == ""  # the program never ran
    assert not db.exists()


def test_corrupted_database_fails_before_the_program_runs(tmp_path: Path, db: Path) -> None:
    write(tmp_path / "ok.py", "print('ran')\n")
    db.write_bytes(b"\x00garbage" * 100)
    run = memlens("run", "ok.py", db=db)
    assert run.returncode != 0
    assert "not an SQLite database" in one_line_error(run.stderr)
    assert run.stdout == ""
    assert db.read_bytes() == b"\x00garbage" * 100


def test_options_after_the_script_belong_to_the_program(tmp_path: Path, db: Path) -> None:
    write(tmp_path / "echo.py", "import sys, json\nprint(json.dumps(sys.argv[1:]))\n")
    run = memlens("run", "--no-html", "-q", "echo.py", "--no-trace", "--", "-q", db=db)
    assert run.returncode == 0
    assert json.loads(run.stdout) == ["--no-trace", "--", "-q"]
    assert only_session(db).traced


SAMPLED = """
    import json

    cache = {}


    def handle(i):
        cache[i] = json.dumps({"i": i, "pad": "x" * 300})


    for i in range(40000):
        handle(i)
"""


@pytest.mark.parametrize("forced_fallback", [False, True])
def test_sample_reports_estimated_sites(tmp_path: Path, db: Path, forced_fallback: bool) -> None:
    write(tmp_path / "svc.py", SAMPLED)
    extra = {"MEMLENS_NO_EXTENSIONS": "1"} if forced_fallback else {}
    run = memlens(
        "run", "--sample", "--sample-interval", "64KiB", "--no-html", "svc.py", db=db, **extra
    )
    assert run.returncode == 0, run.stderr
    session = only_session(db)
    assert not session.traced
    top = session.top_sites[0]
    assert (Path(top.filename).name, top.lineno, top.function) == ("svc.py", 8, "handle")
    # 40,000 strings of ~371 bytes plus the dict's table, charged to the same line:
    # tracemalloc measures 16.18 MB; exact, or estimated within 15 %.
    assert abs(top.size - 16_180_000) < 0.15 * 16_180_000
    expected = "exact (tracemalloc" if forced_fallback else "sampled every 65536 bytes"
    assert session.tags["allocation_sites"].startswith(expected)
    assert "Allocation sites" in run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sample", "--trace"], "choose one of --trace, --sample"),
        (["--sample", "--no-trace"], "choose one of --sample, --no-trace"),
        (["--sample-interval", "1MiB"], "--sample-interval needs --sample"),
        (["--sample", "--sample-interval", "lots"], "invalid --sample-interval 'lots'"),
    ],
)
def test_sample_option_errors_are_one_line(
    tmp_path: Path, db: Path, args: list[str], message: str
) -> None:
    write(tmp_path / "svc.py", "x = 1\n")
    run = memlens("run", *args, "svc.py", db=db)
    assert run.returncode == 2
    assert message in one_line_error(run.stderr)


def test_memlens_own_frames_never_appear_in_sites(tmp_path: Path, db: Path) -> None:
    write(tmp_path / "svc.py", SAMPLED)
    run = memlens("run", "--no-html", "svc.py", db=db)
    assert run.returncode == 0, run.stderr
    session = only_session(db)
    import memlens as package

    own = str(Path(package.__file__).parent)
    for site in session.top_sites:
        assert Path(site.filename).name == "svc.py", site  # no threading.py, no bootstrap
        for frame in site.stack:
            assert not frame.startswith(("<string>", own)), site.stack
            assert "bin/memlens" not in frame
