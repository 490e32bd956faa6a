"""Host a traced program one frame deep by re-executing the interpreter.

tracemalloc records up to N frames of every allocation, and each frame costs time
on every allocation. A program launched through ``memlens`` (console script,
click, the run command, the runner) sits five or more frames above the bottom of
the stack, all of which ``python -X tracemalloc=N script.py`` does not pay for.
So for traced runs on POSIX, ``memlens run`` replaces itself (``os.execv``: same
pid, same file descriptors, environment and working directory) with a fresh
interpreter whose ``-c`` code starts the profiler and ``exec``-s the script at its
top level: one frame under the program. Everything after the program ends
(stopping the profiler, saving, reporting, the exit code) is the run command's
own code, shared with the in-process path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from memlens.cli._run_session import Plan, Started

# Set in the re-executed interpreter so it never re-executes again.
_MARK = "MEMLENS_RUN_HOSTED"
# MEMLENS_RUN_REEXEC=0 keeps every run in the launching process (for debugging).
_SWITCH = "MEMLENS_RUN_REEXEC"

# The code the new interpreter runs. It is the only frame under the program; its
# frames ("<string>") are cut from the program's tracebacks.
BOOTSTRAP = """\
import sys
from memlens.cli._reexec import host
_memlens_hosted = host(sys.argv[1])
try:
    exec(_memlens_hosted.code, _memlens_hosted.namespace)
except BaseException as _memlens_exc:
    _memlens_hosted.finish(_memlens_exc)
_memlens_hosted.finish(None)
"""


def should_reexec(plan: Plan) -> bool:
    """Re-execute for traced runs of script files on POSIX, once."""
    return (
        plan.trace
        and not plan.program.module
        and os.name == "posix"
        and hasattr(os, "execv")
        and not os.environ.get(_MARK)
        and os.environ.get(_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")
        and Path(plan.program.target).is_file()
    )


def reexec(plan: Plan) -> NoReturn:
    """Replace this process with the bootstrap interpreter hosting ``plan``."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.environ[_MARK] = "1"
    # Keep the interpreter's own flags (-X options, -W, -O, -u …) as the user gave them.
    flags = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    payload = json.dumps(plan_to_dict(plan))
    os.execv(sys.executable, [sys.executable, *flags, "-c", BOOTSTRAP, payload])


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    out = plan.outputs
    return {
        "target": plan.program.target,
        "args": list(plan.program.args),
        "name": plan.name,
        "interval": plan.interval,
        "trace_depth": plan.trace_depth,
        "components": plan.components,
        "db": str(out.db),
        "html": str(out.html) if out.html else None,
        "want_html": out.want_html,
        "json": str(out.json) if out.json else None,
        "launch_dir": str(out.launch_dir),
        "quiet": plan.quiet,
        "command": plan.command,
    }


def plan_from_dict(data: dict[str, Any]) -> Plan:
    from memlens.cli._program import Program
    from memlens.cli._run_session import Outputs, Plan

    outputs = Outputs(
        db=str(data["db"]),
        html=Path(data["html"]) if data["html"] else None,
        want_html=data["want_html"],
        json=Path(data["json"]) if data["json"] else None,
        launch_dir=Path(data["launch_dir"]),
    )
    return Plan(
        Program(data["target"], data["args"]),
        data["name"],
        data["interval"],
        True,
        data["trace_depth"],
        data["components"],
        outputs,
        data["quiet"],
        data["command"],
    )


class Hosted:
    """The program's code and ``__main__`` namespace, plus the running profiler."""

    def __init__(self, plan: Plan, started: Started, code: Any, namespace: dict[str, Any]):
        self.plan = plan
        self.started = started
        self.code = code
        self.namespace = namespace

    def finish(self, exc: BaseException | None) -> NoReturn:
        from memlens.cli._program import outcome_of
        from memlens.cli._run_session import finish

        outcome = outcome_of(exc, self.namespace)
        finish(self.plan, self.started, outcome)
        raise AssertionError("finish() exits")  # pragma: no cover


def host(payload: str) -> Hosted:
    """Called by the bootstrap: prepare ``__main__`` and start profiling.

    A memlens error here (the store vanished between launch and host) is one line
    and exit code 2, as anywhere else in the CLI.
    """
    from memlens.core.errors import MemlensError

    try:
        return _host(payload)
    except MemlensError as exc:
        sys.stderr.write(f"memlens: error: {exc}\n")
        raise SystemExit(exc.exit_code) from None


def _host(payload: str) -> Hosted:
    from memlens.cli._program import load_script, outcome_of, prepare_main
    from memlens.cli._run_session import finish, start
    from memlens.heap.frames import mark_host_file

    mark_host_file("<string>")  # this bootstrap (python -c): not the user's frame
    plan = plan_from_dict(json.loads(payload))
    try:
        loaded = load_script(plan.program.target)
        if loaded is None:  # a zipapp under a .py name: not a plain source file
            raise SyntaxError(f"cannot run {plan.program.target!r} as a source file")
    except Exception as exc:  # a syntax error is the program's failure: record it as one
        finish(plan, start(plan), outcome_of(exc))
        raise AssertionError("finish() exits") from None  # pragma: no cover
    code, module = loaded
    started = start(plan)
    prepare_main(plan.program, module)
    return Hosted(plan, started, code, module.__dict__)
