"""``memlens churn TARGET``: allocation patterns per line, with advice."""

from __future__ import annotations

import click

from memlens.cli._deepdive import FORMAT, OUTPUT, emit


@click.command(name="churn", context_settings={"ignore_unknown_options": True})
@click.argument("target")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="How many lines to list.",
)
@FORMAT
@OUTPUT
def command(target: str, args: tuple[str, ...], top: int, fmt: str, output: str | None) -> None:
    """Run TARGET and rank its lines by bytes allocated per second: the share that
    is short-lived and how long it lives, what each line held at the peak against
    what it keeps, and what to change (reuse a buffer, preallocate, stream with a
    generator, join strings instead of +=).

    TARGET is a script (ARGS are its arguments) or package.module:function.
    """
    from memlens.heap.churn import churn_dict
    from memlens.heap.lines import profile_lines

    try:
        report = profile_lines(target, list(args))
    except KeyboardInterrupt:
        raise click.exceptions.Abort() from None
    emit("churn", churn_dict(report, top), fmt, output)
    if report.error:
        click.echo(f"memlens: the target raised {report.error}", err=True)
        raise SystemExit(1)
