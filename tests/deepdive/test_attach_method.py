"""Which way memlens attaches, and the sys.remote_exec (3.14) path's own logic.

No Python 3.14 is available on this machine (Debian 12; pyenv has 3.6-3.13), so the
path is exercised with ``sys.remote_exec`` emulated: the emulation runs the script
file in the real target, in a fresh namespace as CPython 3.14 does, through memlens's
gdb injection. Everything memlens does around the call (the payload and its header,
waiting for the answer, reading it, the fallback when the target refuses) runs for
real against a real target process.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from memlens.heap import attach

needs_gdb = pytest.mark.skipif(shutil.which("gdb") is None, reason="needs gdb")


@pytest.mark.parametrize(
    ("target", "own", "method"),
    [
        ((3, 14), (3, 14), "remote_exec"),
        ((3, 15), (3, 14), "remote_exec"),
        ((3, 14), (3, 15), "remote_exec"),
        ((3, 14), (3, 13), "gdb"),  # memlens too old for PEP 768
        ((3, 13), (3, 14), "gdb"),  # target too old
        ((3, 11), (3, 11), "gdb"),
        ((3, 0), (3, 14), "gdb"),  # a Python whose version could not be read
    ],
)
def test_attach_method_needs_3_14_on_both_sides(
    target: tuple[int, int], own: tuple[int, int], method: str
) -> None:
    assert attach.attach_method(target, own) == method


def test_this_python_attaches_with_gdb() -> None:
    here = (sys.version_info.major, sys.version_info.minor)
    expected = "remote_exec" if here >= (3, 14) else "gdb"
    assert attach.attach_method(here) == expected


def _emulated_remote_exec(pid: int, path: str) -> None:
    """What CPython 3.14 does with the file: run it in a fresh namespace (here, now)."""
    code = (
        "try:\n"
        f" exec(compile(open({path!r}, 'rb').read(), {path!r}, 'exec'), {{}})\n"
        "except BaseException:\n"
        " pass\n"
    )
    attach._gdb(pid, {"mode": "python", "code": code}, Path(path).parent, 60.0)


_MODULES = "import sys\ndef names():\n    return sorted(sys.modules)\n"
_IMPORTS = "import json, heapq\ndef f():\n    return json.dumps([heapq.nlargest(1, [3, 1])])\n"


@needs_gdb
def test_remote_exec_path_runs_the_code_and_leaves_no_imports(
    target: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = attach.run_python(target.pid, _MODULES, "names", method="gdb").value
    monkeypatch.setattr(sys, "remote_exec", _emulated_remote_exec, raising=False)
    got = attach.run_python(target.pid, _IMPORTS, "f", method="remote_exec")
    assert got.method == "remote_exec" and got.value == "[[3]]"
    assert got.stopped == 0.0 and "not stopped" in got.pause_line()
    monkeypatch.delattr(sys, "remote_exec")
    # the header noted the modules loaded before: what the script imported is gone
    assert attach.run_python(target.pid, _MODULES, "names", method="gdb").value == before
    assert target.poll() is None


@needs_gdb
def test_a_target_refusing_remote_exec_falls_back_to_gdb(
    target: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(pid: int, path: str) -> Any:
        raise RuntimeError("Remote debugging is not enabled in the remote process")

    monkeypatch.setattr(sys, "remote_exec", refuse, raising=False)
    got = attach.run_python(target.pid, _MODULES, "names", method="remote_exec")
    assert got.method == "gdb" and "sys" in got.value
    assert "not enabled" in got.details["remote_exec_refused"]


def test_remote_exec_on_an_older_python_is_one_clear_line(
    target: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(sys, "remote_exec", raising=False)
    with pytest.raises(attach.AttachError, match=r"needs Python 3\.14"):
        attach.run_python(target.pid, _MODULES, "names", method="remote_exec")
    assert target.poll() is None
