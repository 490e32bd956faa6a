"""Heap census: known heaps in this process, a real target by pid, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memlens.heap import census as census_mod
from memlens.heap.native_ext import load_extension
from tests.deepdive.conftest import MIB, TRUTH
from tests.memlens_cli import memlens, one_line_error

needs_gdb = pytest.mark.skipif(shutil.which("gdb") is None, reason="needs gdb")


def test_census_functions_keep_no_cells() -> None:
    # A cell variable is created before the snapshot and would drag the census's
    # own structures into the graph it measures.
    for fn in (census_mod.census, census_mod._Graph.__init__, census_mod._Graph._walk):
        assert fn.__code__.co_cellvars == (), fn


@needs_gdb
def test_objects_by_pid_finds_the_known_largest(
    target: subprocess.Popen[str], tmp_path: Path
) -> None:
    truth = TRUTH["objects"]["attach_target.py"]
    before = set(Path(f"/proc/{target.pid}/maps").read_text().splitlines())
    out = memlens("objects", str(target.pid), "--format", "json", db=tmp_path / "m.db")
    assert out.returncode == 0, out.stderr
    assert "paused" in out.stderr and "stopped" in out.stderr
    data = json.loads(out.stdout)
    top = data["largest"][0]
    assert top["description"].startswith(truth["largest"]["description_startswith"])
    assert top["path"] == truth["largest"]["path"]
    assert top["retained"] >= truth["largest"]["retained_at_least_mib"] * MIB
    for want in truth["also_listed"]:
        assert any(
            r["description"].startswith(want["description_startswith"])
            and r["path"][-1].endswith(want["path_endswith"])
            for r in data["largest"]
        ), want
    counts = {}
    out_types = memlens(
        "objects",
        str(target.pid),
        "--types",
        "400",
        "--format",
        "json",
        "--no-paths",
        db=tmp_path / "m.db",
    )
    for row in json.loads(out_types.stdout)["types"]:
        counts[row["type"]] = row["count"]
    for name, n in truth["types"].items():
        assert counts.get(name) == n, (name, counts.get(name))
    assert data["attach"]["pause_seconds"] > 0
    # the target runs the same Python: the census ran there with the C engine
    assert data["engine"] == ("c" if load_extension("_census") is not None else "python")
    # the target runs on, detached; the page memlens mapped for its code is gone
    # (new mappings are heap growth and stdlib extension modules the census loaded)
    assert target.poll() is None
    for line in set(Path(f"/proc/{target.pid}/maps").read_text().splitlines()) - before:
        fields = line.split()
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        assert len(fields) == 6 or hi - lo > 4096, line
    status = Path(f"/proc/{target.pid}/status").read_text()
    assert "TracerPid:\t0" in status


@needs_gdb
def test_objects_text_and_html(target: subprocess.Popen[str], tmp_path: Path) -> None:
    out = memlens("objects", str(target.pid), "--top", "3", db=tmp_path / "m.db")
    assert out.returncode == 0, out.stderr
    assert "Largest objects by retained size" in out.stdout
    assert "module __main__.CACHE" in out.stdout
    html = tmp_path / "o.html"
    out = memlens(
        "objects", str(target.pid), "--format", "html", "-o", str(html), db=tmp_path / "m.db"
    )
    assert out.returncode == 0, out.stderr
    text = html.read_text()
    assert "Heap census" in text and "CACHE" in text


def test_objects_bad_input_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    missing = memlens("objects", "999999999", db=db)
    assert missing.returncode == 2 and "no process" in one_line_error(missing.stderr)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        notpy = memlens("objects", str(sleeper.pid), db=db)
        assert "not a Python program" in one_line_error(notpy.stderr)
    finally:
        sleeper.kill()
        sleeper.wait()
    url = memlens("objects", "127.0.0.1:1", db=db)
    assert "cannot reach" in one_line_error(url.stderr)


@needs_gdb
def test_ptrace_denied_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run memlens without CAP_SYS_PTRACE")
    system_python = shutil.which("python3", path="/usr/bin")
    if system_python is None:
        pytest.skip("needs a python3 that user nobody can run")
    # A target owned by another user, and memlens without CAP_SYS_PTRACE.
    target = subprocess.Popen(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            system_python,
            "-c",
            "import time\nwhile True: time.sleep(0.1)",
        ],
    )
    try:
        # setpriv execs the interpreter: until then the pid is setpriv, not Python.
        deadline = time.monotonic() + 60
        while "python" not in os.path.basename(os.readlink(f"/proc/{target.pid}/exe")):
            assert time.monotonic() < deadline, "the target never became python3"
            time.sleep(0.05)
        out = subprocess.run(
            [
                "setpriv",
                "--inh-caps=-sys_ptrace",
                "--bounding-set=-sys_ptrace",
                sys.executable,
                "-m",
                "memlens",
                "objects",
                str(target.pid),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "MEMLENS_DB": str(tmp_path / "m.db")},
        )
        line = one_line_error(out.stderr)
        assert out.returncode == 2 and "ptrace not permitted" in line
        assert "CAP_SYS_PTRACE" in line
        assert target.poll() is None
    finally:
        target.kill()
        target.wait()


@needs_gdb
def test_a_target_that_raises_is_one_line_and_unharmed(target: subprocess.Popen[str]) -> None:
    from memlens.heap import attach

    with pytest.raises(attach.AttachError, match="raised ZeroDivisionError"):
        attach.run_python(target.pid, "def boom():\n    return 1 / 0\n", "boom")
    count = "import sys\ndef n():\n    return sorted(sys.modules)\n"
    ok = attach.run_python(target.pid, count, "n")
    attach.run_python(target.pid, "import array, heapq, json\ndef f():\n    return 1\n", "f")
    from memlens.heap.objects import census_pid

    census_pid(target.pid, paths=False)
    again = attach.run_python(target.pid, count, "n")
    assert ok.value == again.value  # what memlens imported was forgotten again
    assert target.poll() is None


def _tracer(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("TracerPid:"):
            return int(line.split()[1])
    return 0


@needs_gdb
def test_ctrl_c_during_the_attach_leaves_the_target_running_and_untraced(
    target: subprocess.Popen[str], tmp_path: Path
) -> None:
    import signal

    from memlens.heap import attach

    count = "import sys\ndef n():\n    return sorted(sys.modules)\n"
    modules = attach.run_python(target.pid, count, "n").value
    env = {**os.environ, "MEMLENS_DB": str(tmp_path / "m.db")}
    for _ in range(5):  # until the interrupt lands while gdb holds the target
        proc = subprocess.Popen(
            [sys.executable, "-m", "memlens", "objects", str(target.pid)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        while proc.poll() is None and _tracer(target.pid) == 0:
            time.sleep(0.001)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
            break
        proc.communicate()
    else:
        pytest.skip("the attach never overlapped the interrupt")
    assert proc.returncode != 0 and "Traceback" not in err, err
    assert "waiting for the target to be released" in err
    assert target.poll() is None and _tracer(target.pid) == 0
    state = Path(f"/proc/{target.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    assert state in ("S", "R"), state  # running or sleeping, never left stopped
    assert attach.run_python(target.pid, count, "n").value == modules
