"""Run a Python program in this process the way ``python script.py`` would.

Where ``memlens run`` cannot host the program in a re-executed interpreter
(``cli/_reexec.py``: not POSIX, ``MEMLENS_RUN_REEXEC=0``, a module that is not a
plain source file), it profiles it in-process (like ``python -m cProfile``), so
the program must not notice it is hosted: ``sys.argv``, ``sys.path[0]`` and
``__main__`` are set as the interpreter sets them, and its exit code and uncaught
exceptions come out as they would without memlens. This module does only that;
profiling and reporting stay in the command.
"""

from __future__ import annotations

import atexit
import builtins
import importlib.machinery
import importlib.util
import io
import os
import signal
import sys
import traceback
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from memlens.core.errors import TargetError
from memlens.core.session import COMPLETED, FAILED, INTERRUPTED

if TYPE_CHECKING:
    from memlens.cli._module import ModuleMain

# Frames from these files are memlens's own scaffolding and are cut from the
# program's tracebacks, so users see exactly what Python would have shown.
_SCAFFOLDING = (
    os.path.dirname(os.path.abspath(__file__)),
    os.path.join(os.path.dirname(os.__file__), "runpy.py"),
)


@dataclass
class Outcome:
    """How the program ended."""

    status: str  # completed | failed | interrupted
    exit_code: int
    error: str | None = None
    exception: BaseException | None = None  # uncaught, to print after profiling stops
    message: str | None = None  # a non-integer SystemExit argument, printed like Python
    # The program's globals, kept alive until the session is stopped so that what
    # the program still holds at the end counts as live (as it would in Python,
    # where __main__ lives until shutdown).
    namespace: dict[str, Any] | None = None


@dataclass
class Program:
    """A script path or a module name, plus the arguments it receives."""

    target: str
    args: Sequence[str] = ()
    module: bool = False
    # For -m: the source file python -m would run, found by check() without importing
    # (None where only an import can tell; then the program runs in-process).
    located: ModuleMain | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.target if self.module else os.path.basename(self.target)

    @property
    def argv(self) -> list[str]:
        return [self.target, *self.args]

    def check(self) -> None:
        """Raise :class:`TargetError` if the program cannot be found."""
        if self.module:
            self._check_module()
            return
        path = Path(self.target)
        if not path.exists():
            raise TargetError(f"can't open file {self.target!r}: no such file or directory")
        if path.is_dir() and not (path / "__main__.py").is_file():
            raise TargetError(f"can't run {self.target!r}: a directory needs a __main__.py")
        if not os.access(path, os.R_OK):
            raise TargetError(f"can't open file {self.target!r}: permission denied")

    def _check_module(self) -> None:
        from memlens.cli._module import locate

        saved = sys.path[0] if sys.path else None
        _set_path0(os.getcwd())
        try:
            # First without importing anything (the program must not start here);
            # only a module that is not a plain source file found so is imported.
            self.located = locate(self.target)
            spec = self.located or importlib.util.find_spec(self.target)
        except (ImportError, ValueError) as exc:
            raise TargetError(f"cannot run module {self.target!r}: {exc}") from None
        finally:
            if saved is not None:
                sys.path[0] = saved
        if spec is None:
            raise TargetError(f"no module named {self.target!r}")

    def run(self) -> Outcome:
        """Execute the program in ``__main__`` and report how it ended.

        Never raises for the program's own failures (they are in the outcome);
        ``sys.argv`` and ``sys.path[0]`` are restored afterwards.
        """
        reraise_sigint_at_exit()
        saved_argv = sys.argv[:]
        saved_path0 = sys.path[0] if sys.path else None
        sys.argv[:] = self.argv
        if self.module:
            # python -m puts the current directory first on the path.
            _set_path0(os.getcwd())
        else:
            _set_path0(os.path.dirname(os.path.realpath(self.target)))
        saved_main = sys.modules.get("__main__")
        # The program is executed right here, not in a helper: every frame under
        # it costs tracemalloc time on each allocation (see run.main).
        try:
            loaded = None if self.module else load_script(self.target)
            if loaded is not None:
                code, module = loaded
                sys.modules["__main__"] = module
                exec(code, module.__dict__)
                namespace = module.__dict__
            elif self.module:
                import runpy

                namespace = runpy.run_module(self.target, run_name="__main__", alter_sys=True)
            else:
                import runpy

                namespace = runpy.run_path(os.path.abspath(self.target), run_name="__main__")
        except BaseException as exc:  # the program's own ending: exit, Ctrl-C or a crash
            return outcome_of(exc)
        finally:
            if saved_main is not None:
                sys.modules["__main__"] = saved_main
            sys.argv[:] = saved_argv
            if saved_path0 is not None:
                sys.path[0] = saved_path0
        return Outcome(COMPLETED, 0, namespace=namespace)


def load_script(target: str) -> tuple[types.CodeType, types.ModuleType] | None:
    """Compile a script file for :meth:`Program.run` to execute as ``__main__``.

    ``runpy.run_path`` would set ``sys.argv[0]`` to the path it is given, while
    Python keeps argv[0] as typed and makes ``__file__`` (and tracebacks)
    absolute; so plain source files are run directly. Returns ``None`` for
    directories, zips and ``.pyc`` files, which go through runpy.
    """
    path = os.path.abspath(target)
    if not os.path.isfile(path) or path.endswith((".pyc", ".pyo", ".pyz", ".zip")):
        return None
    with io.open_code(path) as handle:
        source = handle.read()
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        import zipfile  # only now: it is slow to import and rarely needed

        if zipfile.is_zipfile(path):  # a zipapp with an unusual name
            return None
        raise
    module = types.ModuleType("__main__")
    module.__dict__.update(
        __file__=path,
        __cached__=None,
        __package__=None,
        __spec__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", path),
        __builtins__=builtins,
    )
    return code, module


def prepare_main(program: Program, module: types.ModuleType) -> None:
    """Make ``module`` the program's ``__main__`` with its argv and path, for good.

    Used by the re-executed host, which never needs to restore memlens's own.
    """
    reraise_sigint_at_exit()
    sys.argv[:] = program.argv
    prepare_path(program)
    sys.modules["__main__"] = module


def reraise_sigint_at_exit() -> None:
    """Let :func:`exit_like_interrupt` work: register its hook before the program runs
    (``atexit`` runs hooks last-registered-first, so it runs after the program's)."""
    if os.name == "posix":
        atexit.register(_reraise_sigint)


def prepare_path(program: Program) -> None:
    """``sys.path[0]`` as the interpreter sets it: a script's real directory, the
    current directory for ``-m`` (none under ``-P``, where Python adds nothing)."""
    if getattr(sys.flags, "safe_path", False):
        return
    if program.module:
        _set_path0(os.getcwd())
    else:
        _set_path0(os.path.dirname(os.path.realpath(program.target)))


def outcome_of(exc: BaseException | None, namespace: dict[str, Any] | None = None) -> Outcome:
    """The :class:`Outcome` of a program that ended by raising ``exc`` (or not)."""
    if exc is None:
        return Outcome(COMPLETED, 0, namespace=namespace)
    if isinstance(exc, SystemExit):
        return _from_system_exit(exc)
    if isinstance(exc, KeyboardInterrupt):
        return Outcome(INTERRUPTED, 130, "KeyboardInterrupt", exc)
    return Outcome(FAILED, 1, _describe(exc), exc)


def _set_path0(entry: str) -> None:
    if sys.path:
        sys.path[0] = entry
    else:
        sys.path.insert(0, entry)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _from_system_exit(exc: SystemExit) -> Outcome:
    # The interpreter's rules: None -> 0, an int -> itself, anything else is
    # printed to stderr and exits 1.
    code = exc.code
    if code is None:
        return Outcome(COMPLETED, 0)
    if isinstance(code, int) and not isinstance(code, bool):
        status = COMPLETED if code == 0 else FAILED
        return Outcome(status, code, None if code == 0 else f"SystemExit: {code}")
    return Outcome(FAILED, 1, f"SystemExit: {code}", message=str(code))


def user_traceback(exc: BaseException) -> TracebackType | None:
    """``exc``'s traceback without memlens's and runpy's leading frames."""
    tb = exc.__traceback__
    while tb is not None and _is_scaffolding(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


def _is_scaffolding(filename: str) -> bool:
    if filename.startswith("<frozen "):
        return True
    if filename == "<string>" and os.environ.get("MEMLENS_RUN_HOSTED"):
        return True  # the re-executed host's bootstrap (see _reexec)
    path = os.path.abspath(filename)
    return any(path == s or path.startswith(s + os.sep) for s in _SCAFFOLDING)


def print_outcome(outcome: Outcome) -> None:
    """Print what the interpreter would print for this ending (traceback, message)."""
    if outcome.message is not None:
        print(outcome.message, file=sys.stderr)
    exc = outcome.exception
    if exc is None:
        return
    # The interpreter's display reads the exception's own __traceback__, so the
    # trimmed one goes there. Through sys.excepthook, so a hook the program
    # installed still sees it.
    tb = user_traceback(exc)
    exc.__traceback__ = tb
    try:
        sys.excepthook(type(exc), exc, tb)
    except Exception:
        traceback.print_exception(type(exc), exc, tb)


_exit_by_sigint = False


def _reraise_sigint() -> None:
    if not _exit_by_sigint:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


def exit_like_interrupt() -> None:
    """End the process the way Python does after an uncaught KeyboardInterrupt.

    Python finishes shutting down (threads, atexit handlers) and then re-raises
    SIGINT with the default action, so that a shell loop or supervisor sees
    "killed by SIGINT" rather than a plain exit status. The hook doing that was
    registered before the program ran, so it runs after the program's own
    atexit handlers.
    """
    global _exit_by_sigint
    _exit_by_sigint = os.name == "posix"
    raise SystemExit(130)
