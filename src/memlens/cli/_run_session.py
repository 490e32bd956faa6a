"""The lifecycle of one ``memlens run``: start profiling, then stop, save, report, exit.

Shared by the in-process path (``memlens.cli.run``) and the re-executed interpreter
(``memlens.cli._reexec``), which both import it; it imports neither.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from memlens.cli._program import Outcome, Program, exit_like_interrupt, print_outcome
from memlens.core.errors import MemlensError
from memlens.core.redact import redact_argv
from memlens.core.session import INTERRUPTED, Session
from memlens.store import SessionStore, open_store

if TYPE_CHECKING:
    from rich.console import Console

    from memlens.profiling import Profiler


@dataclass
class Plan:
    """Everything ``execute`` needs, validated, with paths made absolute."""

    program: Program
    name: str
    interval: float
    trace: bool
    trace_depth: int | None
    components: dict[str, str]
    outputs: Outputs
    quiet: bool
    command: list[str] = field(default_factory=list)  # as typed, for the session's record
    sample: int | None = None  # bytes between samples (the sampling tracer), or None


@dataclass
class Started:
    """A profiler that is running and the store its session will go to."""

    store: SessionStore
    profiler: Profiler


def start(plan: Plan) -> Started:
    """Open the store and start profiling, right before the program runs."""
    from memlens.profiling import Profiler

    # Fail before the program runs, not after a long run whose session then has
    # nowhere to go.
    store = open_store(plan.outputs.db)
    profiler = Profiler(
        plan.name,
        interval=plan.interval,
        trace=plan.trace,
        trace_depth=plan.trace_depth,
        components=plan.components,
        kind="run",
        sample=plan.sample,
    )
    profiler.start()
    if os.environ.get("MEMLENS_MONITOR"):
        from memlens.service.autostart import autostart

        autostart()  # idempotent: a no-op where the .pth hook already started it
    return Started(store, profiler)


def finish(plan: Plan, started: Started, outcome: Outcome) -> None:
    """Stop profiling, save, report, and exit with the program's code."""
    memlens_failed = conclude(plan, started, outcome)
    _exit(outcome, memlens_failed)


def conclude(plan: Plan, started: Started, outcome: Outcome, *, show_outcome: bool = True) -> bool:
    """Stop profiling, save and report; ``True`` if saving or a report file failed.

    ``show_outcome`` prints the program's traceback or exit message as the interpreter
    would; a host that lets the interpreter itself end the program passes ``False``.
    """
    from memlens.report.progress import busy

    # On a terminal, a stop that takes a while (a big heap's snapshot) says so.
    with _interrupts_ignored(), busy("memlens: finishing the session") as say:
        session = started.profiler.stop(
            status=outcome.status, error=outcome.error, exit_code=outcome.exit_code, progress=say
        )
        session.metadata.argv = redact_argv(plan.program.argv)
        session.tags["command"] = " ".join(redact_argv(plan.command))
        say("memlens: saving the session")
        save_error = _save(session, started.store)
    _flush_program_output()
    if show_outcome:
        print_outcome(outcome)
    failed = _report(session, plan.outputs, save_error, plan.quiet)
    return failed or save_error is not None


@dataclass
class Outputs:
    """Where a run's results go; paths are absolute (``db`` may be a Redis URL)."""

    db: str
    html: Path | None  # None with want_html: the default name in launch_dir
    want_html: bool
    json: Path | None
    launch_dir: Path


def _save(session: Session, store: SessionStore) -> MemlensError | None:
    try:
        store.save(session)
    except MemlensError as exc:
        return exc
    finally:
        store.close()
    return None


def _report(session: Session, out: Outputs, save_error: MemlensError | None, quiet: bool) -> bool:
    """Print the summary and write the report files; return True if a write failed."""
    from memlens.report.html import write_html
    from memlens.report.json import write_json
    from memlens.report.terminal import render_terminal

    err = _stderr_console()
    failed = False
    if not quiet:
        render_terminal(session, err)
    json_out = out.json
    if save_error is None:
        if not quiet:
            err.print(f"memlens: session {session.id} saved to {_shown(out.db, out.launch_dir)}")
    else:
        # Never lose the run: fall back to a JSON file where it was launched.
        json_out = json_out or out.launch_dir / f"memlens-session-{session.id}.json"
        err.print(f"memlens: error: {save_error}; the session goes to {json_out} instead")
    targets: list[tuple[str, Path]] = []
    if json_out is not None:
        targets.append(("JSON", json_out))
    if out.want_html:
        default = out.launch_dir / f"memlens-report-{session.id}.html"
        targets.append(("HTML report", out.html or default))
    from memlens.report.progress import busy

    for label, path in targets:
        try:
            with busy(f"memlens: writing the {label}"):
                if label == "JSON":
                    write_json(session, path)
                else:
                    write_html(session, path)
        except MemlensError as exc:
            failed = True
            err.print(f"memlens: error: {exc}")
            continue
        if not quiet:
            err.print(f"memlens: {label}: {_shown(path, out.launch_dir)}")
    return failed


def _shown(path: Path | str, base: Path) -> str:
    """A path relative to where memlens was launched when inside it (URLs as they are)."""
    if isinstance(path, str) and "://" in path:
        return path
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return str(path)


def _stderr_console() -> Console:
    from rich.console import Console

    # The real stderr, even if the program swapped sys.stderr for something else.
    stream = sys.__stderr__ or sys.stderr
    return Console(file=stream, highlight=False, markup=False, soft_wrap=True)


def _flush_program_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


@contextlib.contextmanager
def _interrupts_ignored() -> Iterator[None]:
    """Ignore Ctrl-C while the session is finalized and saved.

    A second Ctrl-C right after the first must not leave a run unsaved; this
    takes milliseconds, so nobody waits on it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _exit(outcome: Outcome, memlens_failed: bool) -> None:
    if outcome.status == INTERRUPTED:
        exit_like_interrupt()
    code = outcome.exit_code
    if code == 0 and memlens_failed:
        code = MemlensError.exit_code
    sys.exit(code)
