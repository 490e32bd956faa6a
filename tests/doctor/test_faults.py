"""Faults in the target and the environment: each ends in one clear line (or a report)
and the right exit status, through the real CLI in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memlens.heap.doctor import doctor
from tests.doctor.conftest import run_cli


def _write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def _one_error_line(proc: subprocess.CompletedProcess[str], message: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]


def test_step_calling_sys_exit_0_is_an_error_not_a_pass(tmp_path: Path) -> None:
    _write(
        tmp_path, "exits.py", "import sys\n\ndef step(i):\n    if i == 4:\n        sys.exit(0)\n"
    )
    proc = run_cli("exits.py", "--no-save", cwd=str(tmp_path))
    _one_error_line(proc, "step called sys.exit(0)")
    assert proc.stdout == ""


def test_step_raising_a_custom_base_exception(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "custom.py",
        """
        class Cancelled(BaseException):
            pass

        def step(i):
            if i == 2:
                raise Cancelled("shutting down")
        """,
    )
    proc = run_cli("custom.py", "--no-save", cwd=str(tmp_path))
    _one_error_line(proc, "step raised at iteration 2: Cancelled: shutting down")


def test_hanging_step_is_stopped_after_the_budget(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "hangs.py",
        """
        import threading

        def step(i):
            if i == 2:  # warm-up alone makes 3 calls, so this one always runs
                threading.Event().wait()  # never set
        """,
    )
    proc = run_cli("hangs.py", "--budget", "1", "--no-save", cwd=str(tmp_path))
    _one_error_line(proc, "step did not return at iteration 2")


def test_leftover_non_daemon_thread_does_not_keep_the_doctor_alive(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "threads.py",
        """
        import threading

        _stop = threading.Event()
        _started = []

        def step(i):
            if not _started:
                _started.append(threading.Thread(target=_stop.wait, name="poller"))
                _started[0].start()
        """,
    )
    proc = run_cli("threads.py", "--budget", "3", "--no-save", cwd=str(tmp_path))
    # No leak, or inconclusive on a machine too busy for enough checkpoints in 3 s:
    # either way the command ended, with its report.
    assert proc.returncode in (0, 3), proc.stderr
    assert "NO LEAK" in proc.stdout or "INCONCLUSIVE" in proc.stdout
    assert "non-daemon thread(s) running (poller)" in proc.stderr


def test_step_that_forks_gives_one_report(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "forks.py",
        """
        import os

        def step(i):
            if i == 3:
                pid = os.fork()
                if pid:
                    os.waitpid(pid, 0)
        """,
    )
    proc = run_cli("forks.py", "--budget", "5", "--no-save", cwd=str(tmp_path))
    assert proc.returncode in (0, 3), proc.stderr
    assert proc.stdout.count("NO LEAK") + proc.stdout.count("INCONCLUSIVE") == 1, proc.stdout


def test_output_in_a_missing_directory_fails_before_the_run(tmp_path: Path) -> None:
    _write(tmp_path, "calls.py", "def step(i):\n    raise SystemExit('must not run')\n")
    proc = run_cli("calls.py", "-o", str(tmp_path / "missing" / "x.txt"), cwd=str(tmp_path))
    _one_error_line(proc, "does not exist")


def test_inconclusive_exits_3(tmp_path: Path) -> None:
    _write(tmp_path, "slow.py", "_kept = []\n\ndef step(i):\n    _kept.append('x' * 300)\n")
    proc = run_cli("slow.py", "--max-iterations", "30", "--no-save", cwd=str(tmp_path))
    assert proc.returncode == 3, proc.stderr
    assert "INCONCLUSIVE" in proc.stdout


def test_min_iterations_is_honoured(tmp_path: Path) -> None:
    from memlens.heap.doctor import Diagnosis

    _write(tmp_path, "clean.py", "def step(i):\n    sum(range(50))\n")
    out = tmp_path / "d.json"
    proc = run_cli(
        "clean.py",
        "--min-iterations",
        "700",
        "--format",
        "json",
        "-o",
        str(out),
        "--no-save",
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert Diagnosis.from_json(out.read_text()).iterations >= 700


def test_progress_only_on_a_terminal(tmp_path: Path) -> None:
    import shlex
    import shutil

    _write(tmp_path, "slowstep.py", "import time\n\ndef step(i):\n    time.sleep(0.01)\n")
    args = [sys.executable, "-m", "memlens", "doctor", "slowstep.py", "--budget", "6"]
    args += ["--min-iterations", "400", "--no-save"]  # lasts over the 2 s delay
    piped = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "iterations ·" not in piped.stderr
    script = shutil.which("script")  # util-linux: runs the command on a real terminal
    if script is None:
        pytest.skip("needs util-linux script(1) for a pseudo-terminal")
    on_tty = subprocess.run(
        [script, "-qc", shlex.join(args), "/dev/null"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert on_tty.returncode in (0, 3), on_tty.stderr
    assert "iterations ·" in on_tty.stdout


_grown_in_setup: list[bytearray] = []


def test_header_range_excludes_setup_growth() -> None:
    diag = doctor(
        lambda i: None,
        setup=lambda: _grown_in_setup.append(bytearray(48 * 1024 * 1024)),
        budget=5,
    )
    assert diag.rss_end - diag.rss_start < 24 * 1024 * 1024


@pytest.mark.parametrize("where", ["step", "setup"])
def test_api_base_exception_is_a_target_error(where: str) -> None:
    from memlens.core.errors import TargetError

    class Stop(BaseException):
        pass

    def boom(*_: object) -> None:
        raise Stop("x")

    kwargs = {"setup": boom} if where == "setup" else {}
    step = boom if where == "step" else (lambda i: None)
    with pytest.raises(TargetError, match="Stop: x"):
        doctor(step, budget=5, **kwargs)


def test_console_script_frame_is_not_in_the_stacks(tmp_path: Path) -> None:
    """Run through a ``memlens`` console script (as pip writes it into ``venv/bin``):
    its ``<module>`` line is memlens's launcher, never a frame of the leak (#14)."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "memlens").write_text(
        "# -*- coding: utf-8 -*-\n"
        "import re\n"
        "import sys\n"
        "from memlens.cli.main import main\n"
        "if __name__ == '__main__':\n"
        "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
        "    sys.exit(main())\n"
    )
    _write(
        tmp_path,
        "leaky.py",
        """
        _seen = []

        def step(i):
            _seen.append("x" * 1000 + str(i))
        """,
    )
    proc = subprocess.run(
        [sys.executable, "venv/bin/memlens", "doctor", "leaky.py", "--no-save", "-f", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    data = json.loads(proc.stdout)
    stack = data["findings"][0]["stack"]
    assert stack and all(frame.startswith("leaky.py:") for frame in stack), stack
