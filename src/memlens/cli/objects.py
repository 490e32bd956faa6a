"""``memlens objects PID|URL``: what fills a running process's heap, and what holds it."""

from __future__ import annotations

import click

from memlens.cli._deepdive import FORMAT, OUTPUT, emit


@click.command(name="objects")
@click.argument("target", metavar="PID|URL")
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="How many of the largest objects to list.",
)
@click.option(
    "--types",
    "top_types",
    type=click.IntRange(min=1),
    default=25,
    show_default=True,
    help="How many types to list.",
)
@click.option("--no-paths", is_flag=True, help="Skip the paths from roots (faster).")
@click.option(
    "--token",
    envvar="MEMLENS_HTTP_TOKEN",
    default=None,
    help="Bearer token of the monitor endpoint (or $MEMLENS_HTTP_TOKEN).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Seconds to wait for the census.",
)
@FORMAT
@OUTPUT
def command(
    target: str,
    top: int,
    top_types: int,
    no_paths: bool,
    token: str | None,
    timeout: float,
    fmt: str,
    output: str | None,
) -> None:
    """Census of a process's heap: top types by count and bytes, and the largest
    objects by retained size (what would be freed with them), each with its path
    from a named root.

    PID is a local Python process: memlens attaches to it (sys.remote_exec on Python
    3.14+, gdb before), runs the census inside it and prints how long it was paused.
    URL is a memlens monitor's HTTP address (its /debug/objects endpoint).
    """
    from memlens.heap import objects

    if target.isdigit():
        try:
            data = objects.census_pid(int(target), top_types, top, not no_paths, timeout)
        except KeyboardInterrupt:
            raise click.exceptions.Abort() from None
        click.echo(f"memlens: {data['attach']['summary']}", err=True)
    else:
        data = objects.census_url(target, token=token, timeout=timeout)
    emit("objects", data, fmt, output)
