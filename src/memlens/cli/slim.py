"""``memlens slim TARGET``: memory reductions with measured savings."""

from __future__ import annotations

import click

from memlens.cli._deepdive import FORMAT, OUTPUT, emit


@click.command(name="slim", context_settings={"ignore_unknown_options": True})
@click.argument("target")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@FORMAT
@OUTPUT
def command(target: str, args: tuple[str, ...], fmt: str, output: str | None) -> None:
    """Run TARGET, then measure what would shrink its live objects: __slots__ on
    classes with many instances, interning duplicate strings, arrays for lists of
    numbers, slotted classes for many dicts with the same keys. Each saving is
    measured on the live objects, with the code change.

    TARGET is a script (ARGS are its arguments; its globals stay alive for the
    analysis) or package.module:function (its return value stays alive).
    """
    from memlens.heap.slim import slim_target

    try:
        data = slim_target(target, list(args))
    except KeyboardInterrupt:
        raise click.exceptions.Abort() from None
    emit("slim", data, fmt, output)
    if data.get("error"):
        click.echo(f"memlens: the target raised {data['error']}", err=True)
        raise SystemExit(1)
