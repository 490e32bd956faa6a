"""``memlens doctor TARGET``: find leaks, what holds them, why, and the fix.

Exit status: 0 no leak, 1 leak found, 2 error (bad target, step raised, …),
3 inconclusive (the report says why), so that CI never reads "not sure" as "no leak".
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

import click

from memlens.core.errors import MemlensError, StoreError

EXIT_NO_LEAK = 0
EXIT_LEAK = 1
EXIT_INCONCLUSIVE = 3


class _DoctorCommand(click.Command):
    """``--sample`` alone never takes the next word (the TARGET) as its interval:
    an interval is given as ``--sample=SIZE``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        args = [SAMPLE_DEFAULT if a == "--sample" else a for a in args[:end]] + args[end:]
        return super().parse_args(ctx, args)


SAMPLE_DEFAULT = "--sample=default"


@click.command(name="doctor", cls=_DoctorCommand)
@click.argument("target")
@click.option("--setup", "setup", metavar="MODULE:FUNCTION", help="Run once before the steps.")
@click.option(
    "--max-iterations",
    type=click.IntRange(min=10),
    default=5000,
    show_default=True,
    help="Upper bound on step calls (the doctor usually stops earlier).",
)
@click.option(
    "--min-iterations",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Lower bound on step calls before any verdict.",
)
@click.option(
    "--budget",
    type=click.FloatRange(min=0.1),
    default=20.0,
    show_default=True,
    help="Time budget in seconds for the iterations (the analysis adds a little).",
)
@click.option(
    "--max-memory",
    metavar="SIZE",
    help="Resident memory the steps may add (e.g. 2GiB); the run stops before a call "
    "that would pass it and decides on what it saw. Default: the smaller of 2 GiB and "
    "a quarter of the memory available.",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "html"]),
    default="text",
    show_default=True,
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report here.")
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    help="Session store (default: MEMLENS_DB or ./.memlens/memlens.db).",
)
@click.option("--no-save", is_flag=True, help="Do not store the diagnosis.")
@click.option(
    "--sample",
    "sample",
    metavar="[=INTERVAL]",
    default=None,
    help="Diagnose on the sampling tracer instead of exact tracemalloc: one sample "
    "every INTERVAL bytes on average (default 1KiB; see docs/doctor.md).",
)
def command(
    target: str,
    setup: str | None,
    max_iterations: int,
    min_iterations: int,
    budget: float,
    max_memory: str | None,
    fmt: str,
    output: str | None,
    db: str | None,
    no_save: bool,
    sample: str | None,
) -> None:
    """Repeat TARGET and diagnose the memory it leaks.

    TARGET is a scenario file defining step(i) (and optionally setup() and
    teardown()), or package.module:function, called as the step.

    Exit status: 0 no leak, 1 leak found, 2 error, 3 inconclusive.
    """
    from memlens.heap.doctor.api import doctor
    from memlens.heap.doctor.diagnosis import INCONCLUSIVE
    from memlens.heap.doctor.targets import load
    from memlens.heap.frames import mark_launcher
    from memlens.report.doctor_progress import Progress

    if min_iterations > max_iterations:
        raise click.BadParameter("must not exceed --max-iterations", param_hint="--min-iterations")
    limit = _max_memory(max_memory)
    sampling = _sample(sample)
    mark_launcher(sys.argv[0] if sys.argv else "")  # the console script is no step frame
    if output:
        _check_writable(output)  # fail before the run, not after it
    loaded = load(target, setup)
    progress = Progress()
    try:
        diag = doctor(
            loaded.step,
            setup=loaded.setup,
            teardown=loaded.teardown,
            max_iterations=max_iterations,
            min_iterations=min_iterations,
            budget=budget,
            max_memory=limit,
            name=loaded.name,
            user_roots=loaded.user_roots,
            progress=progress,
            sample=sampling,
        )
    except KeyboardInterrupt:
        raise click.exceptions.Abort() from None
    finally:
        progress.stop()
    saved = None if no_save else _save(diag, db)
    _emit(diag, fmt, output, saved)
    code = EXIT_LEAK if diag.leaked else EXIT_NO_LEAK
    if diag.verdict == INCONCLUSIVE:
        code = EXIT_INCONCLUSIVE
    _exit(code)


def _sample(text: str | None) -> bool | int | None:
    """``--sample`` alone: the doctor's default interval; ``--sample=SIZE``: that."""
    if text is None:
        return None
    if text == "default":
        return True
    from memlens.core.units import parse_size

    try:
        size = parse_size(text)
    except (ValueError, MemlensError):
        raise click.BadParameter(
            f"{text!r} is not a size (e.g. 1KiB, 4096)", param_hint="--sample"
        ) from None
    if size < 1:
        raise click.BadParameter("must be at least 1 byte", param_hint="--sample")
    return size


def _max_memory(text: str | None) -> int | None:
    from memlens.core.units import parse_size

    if text is None:
        return None
    try:
        size = parse_size(text)
    except MemlensError as exc:
        raise click.BadParameter(str(exc), param_hint="--max-memory") from None
    if size <= 0:
        raise click.BadParameter("must be greater than zero", param_hint="--max-memory")
    return size


def _check_writable(output: str) -> None:
    from memlens.report.output import ReportWriteError

    path = Path(output)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ReportWriteError(f"cannot write {output}: it is a directory")
    if not folder.is_dir():
        raise ReportWriteError(f"cannot write {output}: directory {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ReportWriteError(f"cannot write {output}: directory {folder} is not writable")


def _exit(code: int) -> None:
    """Exit now, even if the step left non-daemon threads running (they would hang us)."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if not others:
        sys.exit(code)
    from memlens.report.safe import printable

    names = printable(", ".join(sorted({t.name for t in others})), one_line=True)
    click.echo(
        f"memlens: note: the step left {len(others)} non-daemon thread(s) running ({names});"
        " exiting without waiting for them",
        err=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _emit(diag: Any, fmt: str, output: str | None, saved: str | None = None) -> None:
    if fmt == "json":
        text = diag.to_json()
    elif fmt == "html":
        from memlens.report.doctor_html import render_page

        text = render_page(diag.to_dict())
    else:
        from memlens.report.doctor_text import render

        text = render(diag, color=output is None and sys.stdout.isatty())
    if output:
        from memlens.report.output import ReportWriteError, write_atomically

        try:
            write_atomically(Path(output), text)
        except ReportWriteError as exc:
            if saved:
                raise ReportWriteError(
                    f"{exc}; the diagnosis is saved as session {saved} "
                    f"(memlens report {saved} -f {fmt})"
                ) from None
            click.echo(text.rstrip("\n"))  # nothing else keeps it: print it
            raise
        from memlens.report.safe import printable

        click.echo(f"memlens: wrote {printable(output, one_line=True)}", err=True)
    else:
        click.echo(text.rstrip("\n"))


def _save(diag: object, db: str | None) -> str | None:
    """Store the diagnosis as a ``kind="doctor"`` session, if the store exists."""
    from memlens.core.session import COMPLETED, Session

    try:
        from memlens.store import open_store
    except ImportError:
        click.echo("memlens: note: session store not available; diagnosis not saved", err=True)
        return None
    data = diag.to_dict()  # type: ignore[attr-defined]
    session = Session(
        name=f"doctor {data['target']}",
        kind="doctor",
        status=COMPLETED,
        duration=float(data.get("duration", 0.0)),
        analyses={"doctor": data},
    )
    session.start_rss = int(data.get("rss_start", 0))
    session.final_rss = session.peak_rss = int(data.get("rss_end", 0))
    try:
        store = open_store(db)
        try:
            store.save(session)
        finally:
            close = getattr(store, "close", None)
            if close is not None:
                close()
    except MemlensError:
        raise
    except Exception as exc:  # noqa: BLE001 - report storage trouble in one line
        raise StoreError(f"cannot save the diagnosis: {exc}") from exc
    click.echo(f"memlens: saved session {session.id}", err=True)
    return str(session.id)
