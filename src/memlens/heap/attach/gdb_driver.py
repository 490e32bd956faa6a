"""Runs inside gdb's own Python (``gdb -x gdb_driver.py``); stdlib and ``gdb`` only.

It never imports memlens: gdb embeds its own interpreter. The parameters arrive in a
JSON file named by the environment variable ``MEMLENS_ATTACH_ARGS``; the outcome goes
to the ``result`` path in that file, as JSON, written once at the end.

Safety rules, in order of importance:

- No breakpoint is ever inserted, so if gdb dies at any moment other than inside a
  call the kernel detaches it and the target simply runs on.
- Code is only run in a thread stopped inside a blocking system call (sleep, futex,
  select, read, ...), never one stopped in user code or in a memory-mapping call: such a
  thread holds no allocator or interpreter lock, so ``PyGILState_Ensure`` takes the GIL
  the ordinary way, as any C callback from a foreign thread does. If no thread is in
  such a call, gdb detaches, waits a little and tries again.
- The code string lives in a page gdb maps in the target and unmaps after the call,
  so nothing is left behind; the target is always detached before gdb exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time

import gdb

# System calls a thread may be in while holding the C allocator's lock.
_MEMORY_SYSCALLS = {
    "x86_64": {9, 10, 11, 12, 25, 28},  # mmap mprotect munmap brk mremap madvise
    "aarch64": {214, 215, 216, 222, 226, 233},
}


def _syscall(pid: int, tid: int) -> int | None:
    """The system call ``tid`` is blocked in, or ``None`` when it runs user code."""
    try:
        with open(f"/proc/{pid}/task/{tid}/syscall", encoding="ascii") as fh:
            first = fh.read().split()[0]
    except (OSError, IndexError):
        return None
    try:
        nr = int(first)
    except ValueError:
        return None  # "running"
    return nr if nr >= 0 else None


def _safe_thread(pid: int, main_first: bool = True) -> object | None:
    unsafe = _MEMORY_SYSCALLS.get(platform.machine(), set())
    threads = sorted(gdb.selected_inferior().threads(), key=lambda t: t.ptid[1] != pid)
    for thread in threads if main_first else threads[::-1]:
        nr = _syscall(pid, thread.ptid[1])
        if nr is not None and nr not in unsafe:
            return thread
    return None


def _value(expr: str) -> int:
    return int(gdb.parse_and_eval(expr))


def _run_python(code: bytes) -> dict[str, object]:
    size = (len(code) + 1 + 4095) // 4096 * 4096
    # PROT_READ|PROT_WRITE = 3, MAP_PRIVATE|MAP_ANONYMOUS = 0x22
    mmap = "((void *(*)(void *, unsigned long, int, int, int, long))mmap)"
    addr = _value(f"(unsigned long){mmap}(0, {size}, 3, 0x22, -1, 0)")
    if addr in (0, 2**64 - 1):
        return {"error": "could not map a page in the target"}
    try:
        gdb.selected_inferior().write_memory(addr, code + b"\0")
        t0 = time.monotonic()
        state = _value("((int (*)(void))PyGILState_Ensure)()")
        t1 = time.monotonic()
        status = _value(f"((int (*)(const char *))PyRun_SimpleString)((const char *){addr})")
        gdb.execute(f"call ((void (*)(int))PyGILState_Release)({state})", to_string=True)
        t2 = time.monotonic()
    finally:
        _value(f"((int (*)(void *, unsigned long))munmap)((void *){addr}, {size})")
    return {"status": status, "gil_wait": t1 - t0, "call": t2 - t1}


def _run_trim() -> dict[str, object]:
    t0 = time.monotonic()
    released = _value("((int (*)(unsigned long))malloc_trim)(0)")
    return {"released": released, "call": time.monotonic() - t0}


def _load_symbols(pid: int) -> None:
    """Read the executable's, libc's and libpython's symbols *before* attaching.

    Symbol loading is the slow part of an attach (hundreds of milliseconds); done
    first, the target is stopped only for the calls themselves.
    """
    with contextlib.suppress(gdb.error):
        gdb.execute(f"file /proc/{pid}/exe", to_string=True)
    seen: set[str] = set()
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 6 or parts[2] != "00000000":
            continue
        path = parts[5].strip()
        name = path.rsplit("/", 1)[-1]
        if path in seen or not (name.startswith("libc.so") or name.startswith("libpython")):
            continue
        seen.add(path)
        base = int(parts[0].split("-")[0], 16)
        with contextlib.suppress(gdb.error):
            gdb.execute(f"add-symbol-file {path} -o {base:#x}", to_string=True)


def _attach_once(args: dict[str, object]) -> dict[str, object]:
    pid = int(args["pid"])  # type: ignore[call-overload]
    t0 = time.monotonic()
    try:
        gdb.execute(f"attach {pid}", to_string=True)
    except gdb.error as exc:
        return {"fatal": "attach", "message": str(exc)}
    out: dict[str, object] = {"attach": time.monotonic() - t0}
    try:
        try:
            gdb.parse_and_eval("PyGILState_Ensure")
            gdb.parse_and_eval("PyRun_SimpleString")
        except gdb.error:
            out = {"fatal": "not-python"}
            return out
        thread = _safe_thread(pid)
        if thread is None:
            out = {"retry": True}
            return out
        thread.switch()  # type: ignore[attr-defined]
        out["stopped_before_call"] = time.monotonic() - t0
        if args["mode"] == "trim":
            out.update(_run_trim())
        else:
            out.update(_run_python(str(args["code"]).encode("utf-8")))
        return out
    except gdb.error as exc:
        out["fatal"] = "call"
        out["message"] = str(exc)
        return out
    finally:
        t_detach = time.monotonic()
        try:
            gdb.execute("detach", to_string=True)
        except gdb.error as exc:
            out["detach_error"] = str(exc)
        running = float(out.get("call", 0.0)) + float(out.get("gil_wait", 0.0))  # type: ignore[arg-type]
        # While gdb runs a call, the target's other threads run too: not a stop.
        out["stopped_total"] = time.monotonic() - t0 - running
        out["detach"] = time.monotonic() - t_detach


def main() -> None:
    with open(os.environ["MEMLENS_ATTACH_ARGS"], encoding="utf-8") as fh:
        args = json.load(fh)
    for cmd in (
        "set pagination off",
        "set confirm off",
        "set auto-solib-add off",
        "set unwindonsignal on",
        "set print thread-events off",
        "set libthread-db-search-path",
    ):
        gdb.execute(cmd, to_string=True)
    _load_symbols(int(args["pid"]))
    deadline = time.monotonic() + float(args.get("timeout", 5.0))
    attempts = 0
    stopped = 0.0
    while True:
        attempts += 1
        out = _attach_once(args)
        stopped += float(out.get("stopped_total", 0.0))  # type: ignore[arg-type]
        if not out.get("retry") or time.monotonic() >= deadline:
            break
        time.sleep(0.05 * min(attempts, 6))
    out["attempts"] = attempts
    out["stopped_all_attempts"] = stopped
    tmp = args["result"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(out, fh)
    os.replace(tmp, args["result"])


main()
