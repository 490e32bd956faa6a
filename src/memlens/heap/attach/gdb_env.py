"""How gdb must be started on this machine to run code in a process without harm.

gdb 13 cannot write the extended register state (``NT_X86_XSTATE``) on kernels whose
XSAVE area is larger than the one it was built for (CPUs with AMX, Linux 5.16 and
newer): an inferior call fails half-way with "Couldn't write extended state status:
Bad address", and the target's interrupted system call then fails (``OSError: [Errno
514]`` in a sleeping Python). So before gdb touches a user's process, memlens asks once
per machine, on a throwaway ``sleep`` process of its own, whether a call works:

* it works: gdb runs as it is;
* it fails that way: gdb runs with ``memlens._gdbshim`` preloaded, which makes it save
  and restore the x87/SSE state instead (see ``_gdbshim.c``), and the probe is repeated
  that way to show it works;
* otherwise, or without the shim: :class:`GdbUnusable` with one line, and the user's
  process is never attached.

The answer is kept for the process and in a small file in memlens's cache directory,
keyed by gdb's binary, the kernel and the CPU's feature flags, so one probe (about half
a second) serves every later attach on the machine.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from memlens.core.errors import MemlensError

XSTATE_FAILURE = "Couldn't write extended state"
_PROBE_TIMEOUT = 30.0
_memo: dict[str, dict[str, str]] = {}


class GdbUnusable(MemlensError):
    """gdb cannot run code in a process on this machine without harming it."""


def shim_path() -> Path | None:
    """The built ``memlens._gdbshim`` library, or ``None`` where it was not built."""
    here = Path(__file__).resolve().parents[2]  # the memlens package
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"_gdbshim{suffix}"
        if candidate.exists():
            return candidate
    return None


def cache_file() -> Path | None:
    """Where the probe's answer is kept (``MEMLENS_CACHE_DIR=""`` keeps none)."""
    custom = os.environ.get("MEMLENS_CACHE_DIR")
    if custom is not None:
        return Path(custom) / "gdb-probe.json" if custom else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "memlens" / "gdb-probe.json"


def _machine_key(gdb: str) -> str:
    real = os.path.realpath(gdb)
    try:
        stamp = os.stat(real).st_mtime_ns
    except OSError:
        stamp = 0
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        pass
    uname = os.uname()
    raw = "\0".join([real, str(stamp), uname.release, uname.version, flags])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def probe_call(gdb: str, env: dict[str, str]) -> str:
    """gdb's output for one inferior call in a throwaway process (empty if it worked)."""
    sleeper = shutil.which("sleep")
    argv = [sleeper, "60"] if sleeper else [sys.executable, "-c", "import time; time.sleep(60)"]
    child = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        done = subprocess.run(
            [gdb, "-nx", "-batch", "-q", "-p", str(child.pid), "-ex", "call (int)getpid()"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            timeout=_PROBE_TIMEOUT,
        )
        out = done.stdout + done.stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        out = f"the probe did not finish: {exc}"
    finally:
        child.kill()
        child.wait()
    # A working call prints "$1 = <pid>"; anything else is what went wrong.
    return "" if f"= {child.pid}" in out else out


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _decide(gdb: str, base_env: dict[str, str]) -> dict[str, str] | None:
    """The environment to add, or ``None`` when the probe itself could not tell."""
    failure = probe_call(gdb, base_env)
    if not failure:
        return {}
    if XSTATE_FAILURE not in failure:
        # Not the known fault (ptrace refused, a timeout under load...): let the real
        # attach say what is wrong, and remember nothing, so a later attach asks again.
        return None
    shim = shim_path()
    if shim is None:
        raise GdbUnusable(
            "gdb cannot run code in a process on this machine (it fails to write the "
            "CPU's extended register state: gdb 13 on a kernel with a larger XSAVE area) "
            "and memlens._gdbshim, which works around it, was not built; reinstall memlens "
            "with a C compiler or use a newer gdb. No process was touched."
        )
    extra = {"LD_PRELOAD": " ".join(filter(None, [str(shim), base_env.get("LD_PRELOAD", "")]))}
    failure = probe_call(gdb, {**base_env, **extra})
    if failure:
        raise GdbUnusable(
            "gdb cannot run code in a process on this machine, even saving only the SSE "
            f"state: {_last_line(failure)}. No process was touched."
        )
    return extra


def gdb_environment(gdb: str, base_env: dict[str, str]) -> dict[str, str]:
    """What to add to gdb's environment here (``{}`` or the shim's ``LD_PRELOAD``).

    Raises :class:`GdbUnusable` when no way of running gdb can make a call safely.
    """
    key = _machine_key(gdb)
    if key in _memo:
        return dict(_memo[key])
    path = cache_file()
    if path is not None:
        try:
            known = json.loads(path.read_text())
            if isinstance(known, dict) and known.get("key") == key:
                extra = {str(k): str(v) for k, v in known.get("env", {}).items()}
                shim = extra.get("LD_PRELOAD", "").split(" ")[0]
                if not shim or os.path.exists(shim):
                    _memo[key] = extra
                    return dict(extra)
        except (OSError, ValueError):
            pass  # no answer yet, or an unreadable one: ask again
    decided = _decide(gdb, base_env)
    if decided is None:
        return {}
    extra = decided
    _memo[key] = extra
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"key": key, "env": extra}))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only home: the answer is kept for this process only
    return dict(extra)
