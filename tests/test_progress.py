"""Progress for long work: a spinner on a terminal (rich), nothing on a pipe or file."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

from memlens.profiling import Profiler
from memlens.report.progress import busy


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_busy_shows_its_stages_on_a_terminal() -> None:
    out = FakeTerminal()
    shown = threading.Event()
    with busy("memlens: working", stream=out, delay=0.0) as say:
        # The status appears from a timer thread: wait for it (no timing decides).
        for _ in range(600):
            if "memlens: working" in out.getvalue():
                shown.set()
                break
            threading.Event().wait(0.05)
        say("memlens: stage two")
        threading.Event().wait(0.3)  # let the spinner refresh once with the new text
    assert shown.is_set()
    text = out.getvalue()
    assert "memlens: working" in text and "memlens: stage two" in text


def test_busy_says_nothing_on_a_pipe_or_a_file(tmp_path: Path) -> None:
    pipe = io.StringIO()  # not a TTY
    with busy("memlens: working", stream=pipe, delay=0.0) as say:
        say("memlens: more")
        threading.Event().wait(0.2)
    assert pipe.getvalue() == ""
    with open(tmp_path / "log.txt", "w") as fh, busy("memlens: working", stream=fh, delay=0.0):
        threading.Event().wait(0.2)
    assert (tmp_path / "log.txt").read_text() == ""


def test_short_work_shows_nothing_even_on_a_terminal() -> None:
    out = FakeTerminal()
    with busy("memlens: working", stream=out, delay=600.0):
        pass
    assert out.getvalue() == ""


def test_profiler_stop_reports_its_long_stages() -> None:
    stages: list[str] = []
    prof = Profiler("progress", trace=True, interval=60)
    prof.start()
    kept = [bytearray(64) for _ in range(2000)]
    session = prof.stop(progress=stages.append)
    del kept
    assert stages[0] == "memlens: taking the heap snapshot"
    assert stages[1].startswith("memlens: grouping ") and stages[1].endswith(" live blocks by site")
    assert session.top_sites


def test_memlens_run_on_a_terminal_and_on_a_pipe(tmp_path: Path) -> None:
    """End to end: the real CLI under a pseudo-terminal finishes and prints its
    summary; on a pipe its stderr holds no terminal control codes."""
    script = tmp_path / "prog.py"
    script.write_text("data = [str(i) * 3 for i in range(20000)]\nprint('done')\n")
    cmd = [sys.executable, "-m", "memlens", "run", "--db", str(tmp_path / "m.db"), "--no-html"]
    piped = subprocess.run(
        [*cmd, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert piped.returncode == 0, piped.stderr
    assert "\x1b[" not in piped.stderr and "saved to" in piped.stderr
    pid, fd = pty.fork()
    if pid == 0:  # the child runs memlens with its stderr on the terminal
        os.chdir(tmp_path)
        os.execv(sys.executable, [*cmd, str(script)])
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    out = b"".join(chunks).decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert "done" in out and "saved to" in out
