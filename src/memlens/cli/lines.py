"""``memlens lines TARGET``: memory line by line, like memory_profiler's listing."""

from __future__ import annotations

import click

from memlens.cli._deepdive import FORMAT, OUTPUT, emit


@click.command(name="lines", context_settings={"ignore_unknown_options": True})
@click.argument("target")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@FORMAT
@OUTPUT
def command(target: str, args: tuple[str, ...], fmt: str, output: str | None) -> None:
    """Run TARGET and show, for each source line of your code, the bytes it
    allocated, its share of the peak, what it still holds at the end, and how often
    it ran.

    TARGET is a script (ARGS are its arguments) or package.module:function (called
    with no arguments). In your own code, decorate a function with @memlens.lines.
    """
    from memlens.heap.lines import profile_lines

    try:
        report = profile_lines(target, list(args))
    except KeyboardInterrupt:
        raise click.exceptions.Abort() from None
    emit("lines", report.to_dict(), fmt, output)
    if report.error:
        click.echo(f"memlens: the target raised {report.error}", err=True)
        raise SystemExit(1)
