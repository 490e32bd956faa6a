"""``memlens trim PID|--self``: give the C allocator's free memory back to the OS."""

from __future__ import annotations

import json

import click

from memlens.core.errors import MemlensError
from memlens.core.units import format_bytes, format_duration


@click.command(name="trim")
@click.argument("pid", required=False, type=int)
@click.option("--self", "self_", is_flag=True, help="Trim memlens's own process.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def command(pid: int | None, self_: bool, as_json: bool) -> None:
    """Run glibc's malloc_trim(0) in process PID (or in this one with --self) and
    print the bytes returned to the OS and how long the trim paused the process.

    In another process the trim runs from a thread that is waiting in a system call
    (through gdb, which needs ptrace rights); its other threads keep running, but any
    that allocates waits for the trim, which holds the allocator's locks.
    """
    if (pid is None) == (not self_):
        raise MemlensError("give a process id or --self (not both)")
    if self_:
        from memlens.heap.fragmentation import trim

        result = trim()
        before, after, pause = result.rss_before, result.rss_after, result.pause
        where, note = "this process", "in a memlens-trim thread"
    else:
        from memlens.heap import attach

        assert pid is not None
        try:
            outcome = attach.trim_process(pid)
        except KeyboardInterrupt:
            raise click.exceptions.Abort() from None
        before, after, _released = outcome.value
        pause = outcome.held_gil
        where = f"pid {pid}"
        note = f"target stopped {format_duration(outcome.stopped)} by the attach"
    returned = max(0, before - after)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "pid": pid,
                    "rss_before": before,
                    "rss_after": after,
                    "returned": returned,
                    "pause_seconds": pause,
                }
            )
        )
        return
    click.echo(
        f"malloc_trim(0) in {where} returned {format_bytes(returned)} to the OS "
        f"(RSS {format_bytes(before)} → {format_bytes(after)}); the trim took "
        f"{format_duration(pause)} ({note})"
    )
