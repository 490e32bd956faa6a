"""Run a self-contained piece of Python (or ``malloc_trim``) inside another process.

One function does the platform-specific part: :func:`run_python`. On Python >= 3.14
(both sides; :func:`attach_method` decides) it uses ``sys.remote_exec`` (PEP 768),
which runs the script at the target's next safe point, and falls back to gdb when the
target refuses it; otherwise gdb attaches, picks a thread blocked in a system
call, runs the code under ``PyGILState_Ensure`` and detaches (see ``gdb_driver.py``;
``gdb_env.py`` first checks, once per machine, that gdb's calls work here).

The code that runs must use the standard library only (the target may not have
memlens installed) and imports nothing the target had not loaded: it is executed in a
fresh namespace, writes its answer with ``marshal`` to a private directory and clears
its namespace. The target's ``__main__``, ``sys.modules`` and memory mappings are left
as they were. What the target experiences is reported in :class:`AttachResult`: how
long it was stopped by ptrace, and how long the code held its GIL.

Refusals are :class:`AttachError` with one line: no such process, not Python, ptrace
not permitted (``ptrace_scope``/``CAP_SYS_PTRACE``), gdb missing, the target busy.
"""

from __future__ import annotations

import json
import marshal
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memlens.core.errors import MemlensError
from memlens.heap.attach.gdb_env import GdbUnusable, gdb_environment

_DRIVER = Path(__file__).with_name("gdb_driver.py")
_PY_VERSION = re.compile(r"(?:libpython|python)(\d)\.(\d+)")
CAP_SYS_PTRACE = 19


class AttachError(MemlensError):
    """The target process cannot be attached to (or did not answer)."""


@dataclass
class AttachResult:
    """What ran in the target and what it cost the target."""

    pid: int
    method: str  # "gdb" or "remote_exec"
    value: Any = None  # what the code returned (marshal-able data)
    stopped: float = 0.0  # seconds every thread of the target was stopped (ptrace)
    held_gil: float = 0.0  # seconds the code ran in the target (its GIL held)
    attempts: int = 1
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def pause(self) -> float:
        """The longest the target's Python code could not run: stop + GIL held."""
        return self.stopped + self.held_gil

    def pause_line(self) -> str:
        from memlens.core.units import format_duration

        stop = f"stopped {format_duration(self.stopped)}" if self.method == "gdb" else "not stopped"
        return (
            f"target pid {self.pid} paused {format_duration(self.pause)} "
            f"({stop}, Python paused {format_duration(self.held_gil)} while memlens ran; "
            f"via {self.method})"
        )


# -- checks ----------------------------------------------------------------------------


def target_python(pid: int) -> tuple[int, int] | None:
    """The target's Python version from its executable or libpython, if it is Python."""
    check_exists(pid)
    try:
        exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        exe = ""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as fh:
            libs = {line.rsplit("/", 1)[-1].strip() for line in fh if "python" in line}
    except OSError:
        libs = set()
    for name in [exe, *sorted(libs)]:
        m = _PY_VERSION.search(name)
        if m:
            return int(m.group(1)), int(m.group(2))
    if exe.startswith("python") or any(n.startswith("libpython") for n in libs):
        return (3, 0)  # Python, version unknown
    return None


def check_exists(pid: int) -> None:
    if pid <= 0:
        raise AttachError(f"invalid process id {pid}")
    if pid == os.getpid():
        raise AttachError("that is memlens's own process: use the in-process API instead")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise AttachError(f"no process with id {pid}") from None
    except PermissionError:
        pass  # exists, owned by someone else: ptrace_check says more
    if not os.path.exists(f"/proc/{pid}"):
        raise AttachError(f"no process with id {pid} (or /proc is not mounted)")


def _has_cap_ptrace() -> bool:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_SYS_PTRACE & 1)
    except (OSError, ValueError):
        pass
    return os.geteuid() == 0


def _ptrace_scope() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip())
    except (OSError, ValueError):
        return None


def ptrace_check(pid: int) -> None:
    """Refuse early, naming the setting, when the kernel will not let us ptrace ``pid``."""
    scope = _ptrace_scope()
    cap = _has_cap_ptrace()
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        uid = -1
    if scope == 3:
        raise AttachError(
            "ptrace is disabled on this machine (kernel.yama.ptrace_scope = 3); "
            "attaching needs a reboot with a lower ptrace_scope"
        )
    if not cap:
        if scope == 2:
            raise AttachError(
                "ptrace not permitted: kernel.yama.ptrace_scope = 2 allows only processes "
                "with CAP_SYS_PTRACE (run as root, or docker run --cap-add=SYS_PTRACE)"
            )
        if uid != os.geteuid():
            raise AttachError(
                f"ptrace not permitted: process {pid} belongs to another user and memlens "
                "lacks CAP_SYS_PTRACE (run as that user or as root)"
            )
        if scope == 1:
            raise AttachError(
                "ptrace not permitted: kernel.yama.ptrace_scope = 1 allows attaching only "
                "to child processes; run with CAP_SYS_PTRACE (sudo) or "
                "sysctl kernel.yama.ptrace_scope=0"
            )


def _denied_message(pid: int, detail: str) -> str:
    scope = _ptrace_scope()
    scope_text = f"kernel.yama.ptrace_scope = {scope}" if scope is not None else "no Yama LSM"
    return (
        f"ptrace not permitted on process {pid} ({detail.strip()}; {scope_text}; "
        f"CAP_SYS_PTRACE {'present' if _has_cap_ptrace() else 'absent'}): a container "
        "may need --cap-add=SYS_PTRACE, or the kernel ptrace_scope lowered"
    )


# -- running code ----------------------------------------------------------------------


def _private_dir(pid: int) -> Path:
    path = Path(tempfile.mkdtemp(prefix="memlens-attach-"))
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
        if os.geteuid() == 0 and uid != 0:
            os.chown(path, uid, -1)  # the target (another user) writes its answer here
    except OSError:
        pass
    return path


def _wrapper(script: Path) -> str:
    """The line handed to ``PyRun_SimpleString``: runs ``script`` in a fresh namespace.

    It binds no name in the target's ``__main__`` and swallows every exception, so
    nothing is printed to the target's stderr; the script reports its own errors.
    The names of the modules loaded before it ran go with it, so that it can drop
    the ones it imported.
    """
    path = repr(str(script))
    return (
        "try:\n"
        f" exec(compile((lambda f: (f.read(), f.close())[0])(open({path}, 'rb')), {path}, 'exec'),"
        " {'__name__': '__memlens_attach__', '__builtins__': __builtins__,"
        " '__memlens_modules__': set(__import__('sys').modules)})\n"
        "except BaseException:\n"
        " pass\n"
    )


_FOOTER = """

def __memlens_attach_main(entry, kwargs, result_path):
    import marshal as _marshal
    import os as _os
    import time as _time

    t0 = _time.perf_counter()
    try:
        out = {"value": entry(**kwargs)}
    except BaseException as exc:  # report, never raise into the target
        text = str(exc).strip().splitlines()
        out = {"error": type(exc).__name__ + (": " + text[0] if text else "")}
    out["held_gil"] = _time.perf_counter() - t0
    tmp = result_path + ".tmp"
    with open(tmp, "wb") as fh:
        _marshal.dump(out, fh)
    _os.replace(tmp, result_path)


__memlens_attach_main(@ENTRY@, @KWARGS@, @RESULT@)
if "__memlens_modules__" in globals():
    # Forget the modules this code imported, so the target's import state is as it
    # was (an extension module's library stays mapped: it cannot be unloaded).
    import sys as _sys

    for _name in [m for m in _sys.modules if m not in __memlens_modules__]:
        del _sys.modules[_name]
globals().clear()  # break the namespace's cycles now: nothing of ours stays behind
"""


def payload_source(module_source: str, entry: str, kwargs: dict[str, Any], result: str) -> str:
    """A self-contained script: ``module_source`` then a call of ``entry(**kwargs)``."""
    footer = _FOOTER.replace("@ENTRY@", entry).replace("@KWARGS@", repr(kwargs))
    return module_source + footer.replace("@RESULT@", repr(result))


REMOTE_EXEC_SINCE = (3, 14)  # PEP 768: sys.remote_exec


def attach_method(target: tuple[int, int], own: tuple[int, int] | None = None) -> str:
    """How to run code in a target running Python ``target`` from Python ``own``.

    ``"remote_exec"`` when both are 3.14+ (PEP 768: no ptrace stop, the target runs
    the script at its next safe point), else ``"gdb"``. A 3.14 target that refuses
    remote execution (started with ``-X disable_remote_debug``) falls back to gdb.
    """
    mine = own if own is not None else (sys.version_info.major, sys.version_info.minor)
    return "remote_exec" if min(target, mine) >= REMOTE_EXEC_SINCE else "gdb"


# sys.remote_exec runs the script in a fresh namespace, without the wrapper gdb uses:
# the script notes the modules loaded before it, so the footer can drop its imports.
_REMOTE_HEADER = "__memlens_modules__ = set(__import__('sys').modules)\n"


def run_python(
    pid: int,
    module_source: str,
    entry: str,
    kwargs: dict[str, Any] | None = None,
    *,
    timeout: float = 30.0,
    method: str | None = None,
) -> AttachResult:
    """Run ``entry(**kwargs)`` from ``module_source`` inside process ``pid``.

    ``module_source`` must import only the standard library; ``entry`` is a name it
    defines; the return value must be marshal-able. ``method`` forces
    ``"remote_exec"`` or ``"gdb"`` (default: :func:`attach_method`). Raises
    :class:`AttachError` with one line when the target cannot be reached or the code
    raised there.
    """
    version = target_python(pid)
    if version is None:
        raise AttachError(f"process {pid} is not a Python program")
    chosen = method or attach_method(version)
    if chosen not in ("remote_exec", "gdb"):
        raise ValueError(f"unknown attach method {chosen!r}")
    workdir = _private_dir(pid)
    try:
        result = workdir / "result.marshal"
        script = workdir / "payload.py"
        payload = payload_source(module_source, entry, kwargs or {}, str(result))
        refused = ""
        if chosen == "remote_exec":
            script.write_text(_REMOTE_HEADER + payload)
            os.chmod(script, 0o644)
            try:
                outcome = _remote_exec(pid, script, result, timeout)
            except _RemoteRefused as exc:
                refused, chosen = str(exc), "gdb"
        if chosen == "gdb":
            script.write_text(payload)
            os.chmod(script, 0o644)
            outcome = _gdb(pid, {"mode": "python", "code": _wrapper(script)}, workdir, timeout)
            outcome.details["python"] = ".".join(map(str, version))
            if refused:
                outcome.details["remote_exec_refused"] = refused
        if not result.exists():
            if outcome.details.get("status") not in (None, 0):
                raise AttachError(f"process {pid} could not run the memlens code")
            raise AttachError(f"process {pid} did not run the memlens code (no answer)")
        with open(result, "rb") as fh:
            answer = marshal.load(fh)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if "error" in answer:
        raise AttachError(f"the code memlens ran in process {pid} raised {answer['error']}")
    outcome.value = answer.get("value")
    outcome.held_gil = float(answer.get("held_gil", outcome.held_gil))
    return outcome


def trim_process(pid: int, *, timeout: float = 30.0) -> AttachResult:
    """Call glibc's ``malloc_trim(0)`` in process ``pid`` (from a thread in a system call).

    ``value`` is ``(rss_before, rss_after, released)``; ``held_gil`` is the call's
    duration (the other threads keep running, but any that allocates waits for it).
    """
    check_exists(pid)
    workdir = _private_dir(pid)
    try:
        before = _rss(pid)
        outcome = _gdb(pid, {"mode": "trim"}, workdir, timeout)
        after = _rss(pid)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    outcome.held_gil = float(outcome.details.get("call", 0.0))
    outcome.value = (before, after, bool(outcome.details.get("released")))
    return outcome


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        raise AttachError(f"process {pid} has exited") from None


def _gdb(pid: int, args: dict[str, Any], workdir: Path, timeout: float) -> AttachResult:
    gdb = shutil.which("gdb")
    if gdb is None:
        raise AttachError("attaching needs gdb on Python < 3.14: install it (apt-get install gdb)")
    ptrace_check(pid)
    args_path = workdir / "args.json"
    result_path = workdir / "gdb-result.json"
    # gdb gives up retrying after `busy_wait`; the whole run is bounded by `timeout`.
    busy_wait = min(5.0, timeout / 2)
    args_path.write_text(
        json.dumps({**args, "pid": pid, "result": str(result_path), "timeout": busy_wait})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:  # asked once per machine, on a throwaway process, before the target is touched
        env.update(gdb_environment(gdb, env))
    except GdbUnusable as exc:
        raise AttachError(str(exc)) from None
    env["MEMLENS_ATTACH_ARGS"] = str(args_path)
    # Its own session: a Ctrl-C at the terminal must not reach gdb while it is inside
    # a call in the target; memlens waits for the call to finish instead.
    proc = subprocess.Popen(
        [gdb, "-nx", "-batch", "-q", "-x", str(_DRIVER)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    interrupted = False
    deadline = time.monotonic() + timeout
    while True:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                # Never kill gdb mid-call: only ask it to stop, then wait for it.
                proc.send_signal(signal.SIGINT)
                deadline = time.monotonic() + timeout
        except KeyboardInterrupt:
            interrupted = True
            print("memlens: waiting for the target to be released...", file=sys.stderr)
    log = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
    if interrupted:
        raise KeyboardInterrupt
    if not result_path.exists():
        raise AttachError(f"gdb failed on process {pid}: {_last_line(log)}")
    out = json.loads(result_path.read_text())
    fatal = out.get("fatal")
    if fatal == "attach":
        message = str(out.get("message", ""))
        if "not permitted" in message or "Operation not permitted" in message:
            raise AttachError(_denied_message(pid, message))
        if "No such process" in message:
            raise AttachError(f"no process with id {pid}")
        raise AttachError(f"cannot attach to process {pid}: {message.strip()}")
    if fatal == "not-python":
        raise AttachError(f"process {pid} is not a Python program (no Python C API found)")
    if fatal == "call":
        raise AttachError(f"the call in process {pid} failed: {out.get('message', '')}")
    if out.get("retry"):
        raise AttachError(
            f"process {pid} stayed busy in user code for {busy_wait:g} s (no thread in a "
            "system call, where it is safe to run code); nothing was run, try again"
        )
    return AttachResult(
        pid=pid,
        method="gdb",
        stopped=float(out.get("stopped_all_attempts", 0.0)),
        held_gil=float(out.get("call", 0.0)) + float(out.get("gil_wait", 0.0)),
        attempts=int(out.get("attempts", 1)),
        details=out,
    )


def _last_line(log: str) -> str:
    lines = [line for line in log.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


class _RemoteRefused(Exception):
    """``sys.remote_exec`` is off in the target (or here): gdb may still attach."""


def _remote_exec(pid: int, script: Path, result: Path, timeout: float) -> AttachResult:
    remote_exec = getattr(sys, "remote_exec", None)
    if remote_exec is None:
        raise AttachError(f"sys.remote_exec needs Python 3.14 (this is {sys.version.split()[0]})")
    try:
        remote_exec(pid, str(script))
    except PermissionError as exc:
        raise AttachError(_denied_message(pid, str(exc))) from None
    except ProcessLookupError:
        raise AttachError(f"no process with id {pid}") from None
    except RuntimeError as exc:  # remote debugging disabled (-X disable_remote_debug)
        raise _RemoteRefused(str(exc)) from None
    except OSError as exc:
        raise AttachError(f"sys.remote_exec on process {pid} failed: {exc}") from None
    deadline = time.monotonic() + timeout
    while not result.exists():
        if time.monotonic() >= deadline:
            raise AttachError(
                f"process {pid} did not reach a safe point within {timeout:g} s "
                "(it may be blocked in C code); the request stays pending and is harmless"
            )
        time.sleep(0.02)
    return AttachResult(pid=pid, method="remote_exec")
