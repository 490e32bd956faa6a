"""``memlens run``: run a Python program in-process under a profiling session.

The program's stdout is left untouched; memlens writes its summary and messages
to stderr, so ``memlens run app.py > out.txt`` captures only the program's output.
memlens exits with the program's exit code.
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
from typing import TYPE_CHECKING, Any

import click

from memlens.cli._program import Outcome, Program, exit_like_interrupt, print_outcome
from memlens.cli._store_options import db_option
from memlens.core.errors import ConfigError, MemlensError
from memlens.core.session import INTERRUPTED, Session
from memlens.core.units import parse_duration
from memlens.store import SessionStore, default_path, open_store

if TYPE_CHECKING:
    from rich.console import Console

    from memlens.core.profiling import Profiler


@click.command(
    context_settings={"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]}
)
@click.option("-m", "as_module", is_flag=True, help="Run a module, like `python -m MODULE`.")
@click.option("--name", help="Session name (default: the script or module name).")
@click.option(
    "--interval", default="0.1", show_default=True, help="Sampling interval: 0.1, 50ms, 2s."
)
@click.option("--no-trace", is_flag=True, help="Don't run tracemalloc: lowest overhead, no sites.")
@click.option("--trace-depth", type=click.IntRange(1, 1000), help="Frames kept per allocation.")
@click.option(
    "--component",
    "components",
    multiple=True,
    metavar="NAME=PREFIX",
    help="Attribute memory under a module or path prefix to NAME (repeatable).",
)
@click.option("--html", "html_path", metavar="PATH", help="HTML report path.")
@click.option("--no-html", is_flag=True, help="Don't write an HTML report.")
@click.option("--json", "json_path", metavar="PATH", help="Also write the session as JSON.")
@click.option(
    "--monitor",
    is_flag=True,
    help="Also run the always-on monitor (as MEMLENS_MONITOR=1 would), configured as usual.",
)
@db_option
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.argument("target", metavar="SCRIPT|MODULE")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(**params: Any) -> None:
    """Run SCRIPT (or -m MODULE) with ARGS under memlens, then report and store it.

    Options for memlens go before the script; everything after it is the
    program's. The summary goes to stderr; the exit code is the program's.
    """
    execute(plan(**params))  # the options, by name, are plan()'s parameters


def main(argv: list[str]) -> None:
    """``memlens run`` with as few stack frames as possible under the program.

    tracemalloc records the innermost N frames of every allocation; each frame
    of CLI machinery below the program is paid for on every allocation and
    crowds out the program's own frames. Parsing here and returning from click
    before running keeps the program near the bottom of the stack.
    """
    with command.make_context("memlens run", list(argv)) as ctx:
        params = ctx.params
    execute(plan(**params))


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


def plan(
    as_module: bool,
    name: str | None,
    interval: str,
    no_trace: bool,
    trace_depth: int | None,
    components: tuple[str, ...],
    html_path: str | None,
    no_html: bool,
    json_path: str | None,
    monitor: bool,
    db: str | None,
    quiet: bool,
    target: str,
    args: tuple[str, ...],
) -> Plan:
    """Validate the options; raise a one-line error for anything wrong."""
    program = Program(target, args, module=as_module)
    seconds = _interval(interval)
    component_map = parse_components(components)
    program.check()
    if monitor:
        # The program (and any interpreter it or a re-exec starts) sees the same switch
        # as `MEMLENS_MONITOR=1 python app.py`.
        os.environ["MEMLENS_MONITOR"] = "1"
    # Resolve every output path now: the program may change directory.
    launch_dir = Path.cwd()
    outputs = Outputs(
        db=Path(db or default_path()).absolute(),
        html=Path(html_path).absolute() if html_path else None,
        want_html=not no_html,
        json=Path(json_path).absolute() if json_path else None,
        launch_dir=launch_dir,
    )
    return Plan(
        program,
        name or program.name,
        seconds,
        not no_trace,
        trace_depth,
        component_map,
        outputs,
        quiet,
        ["memlens", *sys.argv[1:]],
    )


@dataclass
class Started:
    """A profiler that is running and the store its session will go to."""

    store: SessionStore
    profiler: Profiler


def execute(plan: Plan) -> None:
    """Profile the program, then store and report the session; exits the process."""
    from memlens.cli._reexec import reexec, should_reexec

    if should_reexec(plan):
        # Problems with the store show here, as one line, before anything runs.
        open_store(plan.outputs.db).close()
        reexec(plan)  # continues in a fresh interpreter: see memlens.cli._reexec
    started = start(plan)
    finish(plan, started, plan.program.run())


def start(plan: Plan) -> Started:
    """Open the store and start profiling, right before the program runs."""
    from memlens.core.profiling import Profiler

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
    )
    profiler.start()
    if os.environ.get("MEMLENS_MONITOR"):
        from memlens.service.autostart import autostart

        autostart()  # idempotent: a no-op where the .pth hook already started it
    return Started(store, profiler)


def finish(plan: Plan, started: Started, outcome: Outcome) -> None:
    """Stop profiling, save, report, and exit with the program's code."""
    with _interrupts_ignored():
        session = started.profiler.stop(
            status=outcome.status, error=outcome.error, exit_code=outcome.exit_code
        )
        session.metadata.argv = plan.program.argv
        session.tags["command"] = " ".join(plan.command)
        save_error = _save(session, started.store)
    _flush_program_output()
    print_outcome(outcome)
    failed = _report(session, plan.outputs, save_error, plan.quiet)
    _exit(outcome, failed or save_error is not None)


def _interval(text: str) -> float:
    from memlens.core.profiling import validate_interval

    try:
        return validate_interval(parse_duration(text))
    except ConfigError:
        raise ConfigError(
            f"invalid --interval {text!r}: expected seconds above 0, e.g. 0.1, 50ms or 2s"
        ) from None


def parse_components(specs: tuple[str, ...]) -> dict[str, str]:
    """``("engine=myapp.engine", …)`` -> ``{"engine": "myapp.engine"}``."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, prefix = spec.partition("=")
        if not sep or not name.strip() or not prefix.strip():
            raise ConfigError(
                f"invalid --component {spec!r}: expected NAME=PREFIX, e.g. engine=myapp.engine"
            )
        out[name.strip()] = prefix.strip()
    return out


@dataclass
class Outputs:
    """Where a run's results go; paths are absolute."""

    db: Path
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
    for label, path in targets:
        try:
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


def _shown(path: Path, base: Path) -> str:
    """A path relative to where memlens was launched when inside it."""
    try:
        return str(path.relative_to(base))
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
