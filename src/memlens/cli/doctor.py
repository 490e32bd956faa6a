"""``memlens doctor TARGET``: find leaks, what holds them, why, and the fix.

Exit status: 0 no leak, 1 leak found, 2 error (bad target, step raised, …);
an inconclusive run also exits 0 but says why in the report.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from memlens.core.errors import MemlensError, StoreError

EXIT_NO_LEAK = 0
EXIT_LEAK = 1


@click.command(name="doctor")
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
    "--budget",
    type=click.FloatRange(min=0.1),
    default=20.0,
    show_default=True,
    help="Time budget in seconds for the iterations (the analysis adds a little).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "html"]),
    default="text",
    show_default=True,
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the report here."
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    help="Session store (default: MEMLENS_DB or ./.memlens/memlens.db).",
)
@click.option("--no-save", is_flag=True, help="Do not store the diagnosis.")
def command(
    target: str,
    setup: str | None,
    max_iterations: int,
    budget: float,
    fmt: str,
    output: str | None,
    db: str | None,
    no_save: bool,
) -> None:
    """Repeat TARGET and diagnose the memory it leaks.

    TARGET is a scenario file defining step(i) (and optionally setup() and
    teardown()), or package.module:function, called as the step.

    Exit status: 0 no leak (or inconclusive), 1 leak found, 2 error.
    """
    from memlens.heap.doctor.api import doctor
    from memlens.heap.doctor.targets import load

    loaded = load(target, setup)
    try:
        diag = _run(doctor, loaded, max_iterations, budget)
    except KeyboardInterrupt:
        raise click.exceptions.Abort() from None
    _emit(diag, fmt, output)
    if not no_save:
        _save(diag, db)
    sys.exit(EXIT_LEAK if diag.leaked else EXIT_NO_LEAK)


def _run(doctor: Any, loaded: Any, max_iterations: int, budget: float) -> Any:
    return doctor(
        loaded.step,
        setup=loaded.setup,
        teardown=loaded.teardown,
        max_iterations=max_iterations,
        budget=budget,
        name=loaded.name,
        user_roots=loaded.user_roots,
    )


def _emit(diag: Any, fmt: str, output: str | None) -> None:
    if fmt == "json":
        text = diag.to_json()
    elif fmt == "html":
        from memlens.report.doctor_html import render_page

        text = render_page(diag.to_dict())
    else:
        from memlens.report.doctor_text import render

        text = render(diag, color=output is None and sys.stdout.isatty())
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
        click.echo(f"memlens: wrote {output}", err=True)
    else:
        click.echo(text.rstrip("\n"))


def _save(diag: object, db: str | None) -> None:
    """Store the diagnosis as a ``kind="doctor"`` session, if the store exists."""
    from memlens.core.session import COMPLETED, Session

    try:
        from memlens.store import open_store
    except ImportError:
        click.echo("memlens: note: session store not available; diagnosis not saved", err=True)
        return
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
