"""Host the program at the bottom of the stack by re-executing the interpreter.

tracemalloc records up to N frames of every allocation, and each frame costs time
on every allocation. A program launched through ``memlens`` (console script,
click, the run command, the runner) sits five or more frames above the bottom of
the stack, all of which ``python -X tracemalloc=N script.py`` does not pay for.
So on POSIX, ``memlens run`` (traced, ``--sample`` or ``--no-trace``) replaces
itself (``os.execv``: same pid, same file descriptors, environment and working
directory, same interpreter flags) with a fresh interpreter that runs the script's
own code as ``__main__``, with nothing under it: exactly the stack of
``python -X tracemalloc=N script.py``, and no memlens frame in any recorded stack.

How: the script is compiled here, with a memlens prologue and epilogue around its
top-level statements, into a one-off ``.pyc`` that the new interpreter is given
as its script (Python runs a ``.pyc`` named on the command line directly). The
code's file name is the script's, so frames, tracebacks and allocation sites name
the script and its lines. In the new interpreter:

- the prologue (:func:`begin`) restores what ``python script.py`` would have set
  (``sys.argv[0]`` as typed, ``sys.path[0]``, ``__file__``, ``__loader__``),
  deletes the ``.pyc`` and starts the profiler: this is the start-up hook;
- the statements run in the module's own frame, the bottom one;
- the epilogue (:func:`end`), in ``try: … except BaseException as e: end(e)`` /
  ``else: end(None)``, holds the exception that ended the program, so it knows the
  outcome exactly (``SystemExit(n)``'s code, the traceback, Ctrl-C). It stops the
  profiler, saves, prints what Python would have printed and the summary, and ends
  the process as the in-process path does (``SystemExit`` with the program's code;
  death by SIGINT after a ``KeyboardInterrupt``, once the ``atexit`` hooks ran).

``-m module`` runs the same way: the module's source file, found in the launching
process without importing anything (``cli/_module.py``), is compiled the same way;
its prologue makes ``__main__`` what ``python -m`` makes it (``sys.argv[0]`` is
``"-m"`` while the module's package is imported, then the module's file;
``sys.path[0]`` is the current directory), and before the module's first statement,
in its own frame, the package is imported and :func:`enter` sets ``__spec__``,
``__file__``, ``__package__``, ``__loader__`` and ``__cached__`` from the module's
spec as ``runpy`` does. The module's frame is then the bottom one (``python -m``
has two ``runpy`` frames under it, which tracemalloc pays for; memlens does not).
Should the package's ``__init__`` have moved the module (a ``__path__`` changed at
import), :func:`enter` runs the module the import finds, one frame under it.
A module that is not a plain source file (an extension, a zip) or does not compile
runs in the launching process, through ``runpy``.

A hook in ``sitecustomize`` (run before the script, with an ``atexit`` hook after
it) cannot do this: the interpreter consumes a ``SystemExit`` before any hook sees
its code, so the session would not know it. A waiting parent process would know
it, but the program would no longer run under the command's pid.

A script that does not compile, or is not a plain source file (a zipapp), runs
through the older ``-c`` bootstrap below, one frame under the program; it records
a syntax error as the program's failure.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import types

    from memlens.cli._program import Program
    from memlens.cli._run_session import Plan, Started

# Set in the re-executed interpreter so it never re-executes again.
_MARK = "MEMLENS_RUN_HOSTED"
# MEMLENS_RUN_REEXEC=0 keeps every run in the launching process (for debugging).
_SWITCH = "MEMLENS_RUN_REEXEC"

# The fallback: code the new interpreter runs with -c. It is the only frame under the
# program; its frames ("<string>") are cut from the program's tracebacks.
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

# Wrapped around the script's statements (after its docstring and __future__
# imports); STATEMENTS is replaced by them. No name is left in the program's
# globals: the except clause deletes its own.
_WRAPPER = """\
__import__("memlens.cli._reexec", fromlist=["begin"]).begin(PAYLOAD)
try:
    STATEMENTS
except BaseException as __memlens_ending__:
    __import__("memlens.cli._reexec", fromlist=["end"]).end(__memlens_ending__)
    raise
else:
    __import__("memlens.cli._reexec", fromlist=["end"]).end(None)
"""

# For -m, first in the try block: import the module's package, as runpy does before
# it runs the module (in the module's frame, so no memlens frame is under the
# package's allocations), then make __main__ the module (its spec, file, package).
_MODULE_ENTRY = """\
__import__(PARENT)
__import__("memlens.cli._reexec", fromlist=["enter"]).enter()
"""


def should_reexec(plan: Plan) -> bool:
    """Re-execute on POSIX, once: script files, and modules found as source files."""
    program = plan.program
    return (
        os.name == "posix"
        and hasattr(os, "execv")
        and not os.environ.get(_MARK)
        and os.environ.get(_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")
        and (program.located is not None if program.module else Path(program.target).is_file())
    )


def reexec(plan: Plan) -> None:
    """Replace this process with an interpreter hosting ``plan`` (see module docstring).

    Returns (having done nothing) only for a module whose source does not compile:
    it then runs in this process, where ``runpy`` reports the error as Python does.
    """
    import subprocess

    payload = json.dumps(plan_to_dict(plan))
    located = plan.program.located
    if located is not None:
        pyc = hosted_pyc(located.origin, payload, parent=located.parent)
        if pyc is None:
            return
    else:
        pyc = hosted_pyc(plan.program.target, payload)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.environ[_MARK] = "1"
    # Keep the interpreter's own flags (-X options, -W, -O, -u …) as the user gave them.
    flags = subprocess._args_from_interpreter_flags()  # type: ignore[attr-defined]
    if pyc is None:
        argv = [sys.executable, *flags, "-c", BOOTSTRAP, payload]
    else:
        argv = [sys.executable, *flags, pyc, *plan.program.args]
    try:
        os.execv(sys.executable, argv)
    except OSError:
        if pyc is not None:
            _remove(pyc)
        raise


def hosted_pyc(target: str, payload: str, parent: str | None = None) -> str | None:
    """Compile ``target`` with the hosting prologue and epilogue into a one-off ``.pyc``.

    ``parent`` is given for a ``-m`` module (``""`` for a top-level one): its code
    then first imports the package and becomes the module (:func:`enter`).
    Returns the ``.pyc``'s path, or ``None`` when the file is not a plain source file
    that compiles (the ``-c`` bootstrap then runs a script and reports the error as
    Python would).
    """
    import ast
    import importlib.util
    import io
    import marshal
    import tempfile

    path = os.path.abspath(target)
    try:
        with io.open_code(path) as handle:
            source = handle.read()
        tree = ast.parse(source, path)
    except (OSError, SyntaxError, ValueError):
        return None
    head = 0  # the docstring and __future__ imports stay first, as Python requires
    body = tree.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        head = 1 if isinstance(body[0].value.value, str) else 0
    while head < len(body) and isinstance(body[head], ast.ImportFrom):
        if body[head].module != "__future__":  # type: ignore[attr-defined]
            break
        head += 1
    wrapper = ast.parse(_WRAPPER.replace("PAYLOAD", repr(payload)))
    for node in ast.walk(wrapper):
        if "lineno" in node._attributes:
            # memlens's own lines point at the script's first line, never past its end
            node.lineno = node.end_lineno = 1  # type: ignore[attr-defined]
            node.col_offset = node.end_col_offset = 0  # type: ignore[attr-defined]
    entry: list[ast.stmt] = []
    if parent is not None:
        entry = ast.parse(_MODULE_ENTRY.replace("PARENT", repr(parent))).body
        if not parent:
            entry = entry[1:]  # a top-level module: no package to import
    for node in [n for statement in entry for n in ast.walk(statement)]:
        if "lineno" in node._attributes:
            node.lineno = node.end_lineno = 1  # type: ignore[attr-defined]
            node.col_offset = node.end_col_offset = 0  # type: ignore[attr-defined]
    attempt = wrapper.body[1]
    assert isinstance(attempt, ast.Try)
    attempt.body = [*entry, *body[head:]] or [ast.Pass()]
    tree.body = [*body[:head], *wrapper.body]
    ast.fix_missing_locations(tree)
    try:
        code = compile(tree, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    header = importlib.util.MAGIC_NUMBER + bytes(12)  # flags, mtime, size: unchecked
    try:
        folder = tempfile.mkdtemp(prefix="memlens-run-")
    except OSError:  # no writable temporary directory: the bootstrap needs none
        return None
    pyc = os.path.join(folder, Path(path).stem + ".pyc")
    try:
        with open(pyc, "wb") as out:
            out.write(header + marshal.dumps(code))
    except OSError:
        _remove(pyc)
        return None
    return pyc


def _remove(pyc: str) -> None:
    import contextlib

    with contextlib.suppress(OSError):
        os.unlink(pyc)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(pyc))


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    out = plan.outputs
    located = plan.program.located
    return {
        "target": plan.program.target,
        "args": list(plan.program.args),
        "module": [located.name, located.origin] if located is not None else None,
        "trace": plan.trace,
        "sample": plan.sample,
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
    from memlens.cli._module import ModuleMain
    from memlens.cli._program import Program
    from memlens.cli._run_session import Outputs, Plan

    outputs = Outputs(
        db=str(data["db"]),
        html=Path(data["html"]) if data["html"] else None,
        want_html=data["want_html"],
        json=Path(data["json"]) if data["json"] else None,
        launch_dir=Path(data["launch_dir"]),
    )
    module = data["module"]
    program = Program(data["target"], data["args"], module=module is not None)
    if module is not None:
        program.located = ModuleMain(*module)
    return Plan(
        program,
        data["name"],
        data["interval"],
        data["trace"],
        data["trace_depth"],
        data["components"],
        outputs,
        data["quiet"],
        data["command"],
        data["sample"],
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


# -- inside the hosted interpreter (see the module docstring) ---------------------------
_hosting: tuple[Plan, Started] | None = None
_entered = False  # -m: the module's own statements have started (enter() ran)


def begin(payload: str) -> None:
    """The prologue: make ``__main__`` what ``python script.py`` (or ``python -m``)
    makes it, then profile.

    A memlens error here (the store vanished between launch and now) is one line and
    exit code 2, as anywhere else in the CLI.
    """
    global _hosting, _entered
    import importlib.machinery

    import memlens.profiling  # noqa: F401 - memlens's imports, before the program's path
    from memlens.cli._program import prepare_path, reraise_sigint_at_exit
    from memlens.cli._run_session import start
    from memlens.core.errors import MemlensError

    # The program's own children (a nested `memlens run`) start afresh, not hosted.
    os.environ.pop(_MARK, None)
    main: types.ModuleType = sys.modules["__main__"]
    pyc = main.__file__ or ""
    _remove(pyc)  # the one-off .pyc: read already
    plan = plan_from_dict(json.loads(payload))
    program = plan.program
    _restore_orig_argv(pyc, program)
    if program.located is not None:
        # What python -m leaves in __main__ until runpy has found the module: the
        # package is imported with argv[0] "-m" and no __file__ (enter() sets them).
        for name in ("__file__", "__cached__"):
            main.__dict__.pop(name, None)
        main.__loader__ = importlib.machinery.BuiltinImporter
        sys.argv[0] = "-m"
        _entered = False
    else:
        path = os.path.abspath(program.target)
        loader = importlib.machinery.SourceFileLoader("__main__", path)
        main.__dict__.update(__file__=path, __cached__=None, __loader__=loader)
        sys.argv[0] = program.target
    prepare_path(program)
    reraise_sigint_at_exit()
    try:
        _hosting = (plan, start(plan))
    except MemlensError as exc:
        sys.stderr.write(f"memlens: error: {exc}\n")
        raise SystemExit(exc.exit_code) from None


def _restore_orig_argv(pyc: str, program: Program) -> None:
    """``sys.orig_argv`` as ``python [flags] script.py args`` / ``-m module args`` has it."""
    orig = getattr(sys, "orig_argv", None)
    if not orig:
        return
    at = len(orig) - len(sys.argv)
    if at < 0 or orig[at] != pyc:
        return
    orig[at : at + 1] = ["-m", program.target] if program.module else [program.target]


def enter() -> None:
    """``-m`` only, in the module's frame once its package is imported: ``__main__``
    becomes the module as ``runpy`` makes it (spec, file, package, loader, argv[0])."""
    global _entered
    import importlib.util

    assert _hosting is not None
    located = _hosting[0].program.located
    assert located is not None
    name, parent = located.name, located.parent
    existing = sys.modules.get(name)
    if parent and existing is not None and not hasattr(existing, "__path__"):
        import warnings

        warnings.warn(  # as runpy warns, for a package that imports the module itself
            RuntimeWarning(
                f"{name!r} found in sys.modules after import of package {parent!r}, but "
                f"prior to execution of {name!r}; this may result in unpredictable behaviour"
            ),
            stacklevel=2,
        )
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"No module named {name}", name=name)
    main = sys.modules["__main__"]
    main.__dict__.update(
        __file__=spec.origin,
        __cached__=spec.cached,
        __loader__=spec.loader,
        __package__=spec.parent,
        __spec__=spec,
    )
    sys.argv[0] = spec.origin or located.origin
    _entered = True
    origin = os.path.abspath(spec.origin) if spec.origin else None
    if origin != located.origin:
        # The package's own code moved the module (its __path__ changed on import): run
        # the module python -m would run, here, one memlens frame under it.
        global _elsewhere
        _elsewhere = spec.origin or "?"
        code = spec.loader.get_code(name)  # type: ignore[attr-defined]
        exec(code, main.__dict__)
        raise _RanElsewhere


class _RanElsewhere(BaseException):
    """The module ran from :func:`enter`: the statements compiled at launch are not its."""


_elsewhere: str | None = None  # the file that ran instead, if one did


def _from_file(tb: types.TracebackType | None, filename: str) -> types.TracebackType | None:
    """``tb`` from its first frame in ``filename`` on (all of it if none is)."""
    at = tb
    while at is not None and at.tb_frame.f_code.co_filename != filename:
        at = at.tb_next
    return at or tb


def end(ending: BaseException | None) -> NoReturn:
    """The epilogue: stop, save and report, then end the process as the program did.

    Called with the exception that ended the program (``None`` if it ran to the end)
    in the module's own frame, so the outcome is exact: ``SystemExit(n)``'s code, the
    traceback (printed through ``sys.excepthook``, as Python does), Ctrl-C. It raises
    ``SystemExit`` with the program's exit code (after a ``KeyboardInterrupt``, the
    process then dies by SIGINT once the ``atexit`` hooks ran, as Python's does).
    """
    from memlens.cli._program import outcome_of
    from memlens.cli._run_session import finish

    if _hosting is None:  # pragma: no cover - begin() exited before the program ran
        raise SystemExit(2)
    plan, started = _hosting
    if isinstance(ending, _RanElsewhere):
        ending = None  # the module that ran instead ran to its end
    elif ending is not None and _elsewhere is not None:
        ending.__traceback__ = _from_file(ending.__traceback__, _elsewhere)
    if ending is not None and plan.program.module and not _entered:
        # Raised while importing the module's package: python -m shows no frame of
        # the module's own (that line 1 is the entry above its statements).
        tb = ending.__traceback__
        if tb is not None and tb.tb_frame.f_globals is sys.modules["__main__"].__dict__:
            ending.__traceback__ = tb.tb_next
    finish(plan, started, outcome_of(ending))
    raise AssertionError("finish() exits")  # pragma: no cover
