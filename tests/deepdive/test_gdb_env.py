"""gdb's calls on this machine: probed on a throwaway process, shimmed where needed."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from memlens.heap.attach import gdb_env
from memlens.heap.attach.gdb_env import GdbUnusable, gdb_environment, probe_call, shim_path

GDB = shutil.which("gdb")
needs_gdb = pytest.mark.skipif(GDB is None, reason="needs gdb")
needs_shim = pytest.mark.skipif(
    shim_path() is None and not sys.platform.startswith("linux"),
    reason="the shim is built on Linux only",
)


@pytest.fixture(autouse=True)
def _fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMLENS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(gdb_env, "_memo", {})


def _fake_gdb(tmp_path: Path, body: str) -> str:
    """A stand-in for gdb: prints what a real one would, by the shim's presence."""
    path = tmp_path / "gdb"
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


XSTATE_FAULT = """
pid=$5
case "$LD_PRELOAD" in
  *_gdbshim*) echo "\\$1 = $pid" ;;
  *) echo "Couldn't write extended state status: Bad address." ;;
esac
"""


@pytest.mark.skipif(sys.platform != "linux", reason="Linux: the shim's platform")
def test_the_shim_is_built_where_a_compiler_is() -> None:
    from tests.extensions import buildable

    if buildable() and not os.environ.get("MEMLENS_NO_EXTENSIONS"):
        assert shim_path() is not None, "memlens._gdbshim should have been built"


@needs_gdb
@needs_shim
def test_with_the_shim_a_real_gdb_call_works_and_saves_only_sse_state() -> None:
    shim = shim_path()
    if shim is None:
        pytest.skip("memlens._gdbshim not built")
    env = {**os.environ, "LD_PRELOAD": str(shim)}
    assert probe_call(GDB or "gdb", env) == ""
    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        out = subprocess.run(
            [GDB or "gdb", "-nx", "-batch", "-q", "-p", str(child.pid)]
            + ["-ex", "info registers ymm0", "-ex", "info registers xmm0"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    finally:
        child.kill()
        child.wait()
    text = out.stdout + out.stderr
    assert "Invalid register `ymm0'" in text  # no extended state: x87/SSE only
    assert "xmm0" in text and "Invalid register `xmm0'" not in text


@needs_gdb
def test_this_machine_gets_a_working_gdb_and_the_target_is_unharmed(tmp_path: Path) -> None:
    from memlens.heap.attach import run_python

    extra = gdb_environment(GDB or "gdb", dict(os.environ))
    assert set(extra) <= {"LD_PRELOAD"}
    target = subprocess.Popen(
        [sys.executable, "-c", "import time\nfor _ in range(100): time.sleep(0.05)\nprint('ok')"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)
        result = run_python(target.pid, "def main():\n    return 6 * 7\n", "main", {})
        assert result.value == 42
        out, err = target.communicate(timeout=60)
    finally:
        if target.poll() is None:
            target.kill()
    assert target.returncode == 0, err
    assert out.strip() == "ok"


def test_a_machine_where_calls_work_needs_nothing(tmp_path: Path) -> None:
    gdb = _fake_gdb(tmp_path, 'echo "\\$1 = $5"\n')
    assert gdb_environment(gdb, dict(os.environ)) == {}


def test_the_xstate_fault_is_met_with_the_shim_and_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gdb = _fake_gdb(tmp_path, XSTATE_FAULT)
    shim = tmp_path / "_gdbshim.so"
    shim.write_bytes(b"")
    monkeypatch.setattr(gdb_env, "shim_path", lambda: shim)
    extra = gdb_environment(gdb, {"PATH": os.environ["PATH"]})
    assert extra == {"LD_PRELOAD": str(shim)}
    # Kept on disk: a new process (no memo) asks no gdb again.
    monkeypatch.setattr(gdb_env, "_memo", {})
    monkeypatch.setattr(gdb_env, "probe_call", lambda *a: pytest.fail("probed again"))
    assert gdb_environment(gdb, {"PATH": os.environ["PATH"]}) == extra


def test_the_xstate_fault_without_the_shim_is_one_line_and_touches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gdb = _fake_gdb(tmp_path, XSTATE_FAULT)
    monkeypatch.setattr(gdb_env, "shim_path", lambda: None)
    with pytest.raises(GdbUnusable) as err:
        gdb_environment(gdb, {"PATH": os.environ["PATH"]})
    message = str(err.value)
    assert "\n" not in message
    assert "extended register state" in message and "No process was touched" in message


def test_a_shim_that_does_not_help_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gdb = _fake_gdb(tmp_path, 'echo "Couldn\'t write extended state status: Bad address."\n')
    shim = tmp_path / "_gdbshim.so"
    shim.write_bytes(b"")
    monkeypatch.setattr(gdb_env, "shim_path", lambda: shim)
    with pytest.raises(GdbUnusable, match="even saving only the SSE state"):
        gdb_environment(gdb, {"PATH": os.environ["PATH"]})


def test_an_unreadable_cache_is_asked_again(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "gdb-probe.json"
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    gdb = _fake_gdb(tmp_path, 'echo "\\$1 = $5"\n')
    assert gdb_environment(gdb, dict(os.environ)) == {}
    assert '"env": {}' in cache.read_text()


def test_a_probe_that_cannot_tell_is_not_remembered(tmp_path: Path) -> None:
    gdb = _fake_gdb(tmp_path, 'echo "ptrace: Operation not permitted."\n')
    assert gdb_environment(gdb, dict(os.environ)) == {}
    assert not (tmp_path / "cache" / "gdb-probe.json").exists()
    assert gdb_env._memo == {}
