"""The ``memlens`` command: a click group whose subcommands load on first use.

Each subcommand lives in its own module under ``memlens.cli`` and exposes a click
command named ``command``. Loading them lazily keeps ``memlens --help`` and every
single command fast, and keeps one command's optional dependencies out of another.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from memlens.core.errors import MemlensError

# name -> (module, one-line help shown in `memlens --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("memlens.cli.run", "Run a Python program under a memory profiling session."),
    "sessions": ("memlens.cli.sessions", "List stored sessions."),
    "show": ("memlens.cli.show", "Show a stored session's summary."),
    "report": ("memlens.cli.report", "Render a stored session as text, HTML or JSON."),
    "export": ("memlens.cli.export", "Export a session's raw samples as CSV or JSON Lines."),
    "rm": ("memlens.cli.rm", "Delete stored sessions."),
    "doctor": ("memlens.cli.doctor", "Find leaks: where, what holds them, why, and the fix."),
    "context": ("memlens.cli.context", "Profile an assistant's context tokens by layer."),
    "top": ("memlens.cli.top", "Live view of a running service's memory endpoint."),
    "objects": ("memlens.cli.objects", "Census of a process's heap: types, largest objects."),
    "trim": ("memlens.cli.trim", "Return the C allocator's free memory to the OS."),
    "memory": ("memlens.cli.memory", "Check and repair shared memory records."),
    "lines": ("memlens.cli.lines", "Memory line by line: allocated, at peak, retained, hits."),
    "churn": ("memlens.cli.churn", "Allocation patterns per line, with advice."),
    "slim": ("memlens.cli.slim", "Memory reductions with measured savings."),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, short_help = entry
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return _unavailable(cmd_name, short_help)
        command: click.Command = module.command
        command.short_help = command.short_help or short_help
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from :data:`COMMANDS`, without importing any command
        (click's default loads every subcommand to ask for its help line)."""
        rows = []
        for name in self.list_commands(ctx):
            module_name, short_help = COMMANDS[name]
            if importlib.util.find_spec(module_name) is None:
                short_help += " (not available yet)"
            rows.append((name, short_help))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable(name: str, short_help: str) -> click.Command:
    @click.command(name=name, short_help=short_help + " (not available yet)")
    def _cmd() -> None:
        raise click.ClickException(f"'{name}' is not available in this build of memlens")

    return _cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="memlens")
def cli() -> None:
    """memlens: what holds your service's memory, why it grows, and what to change.

    Covers both memories of a long-running Python service: the process's bytes and
    the model's context tokens.
    """


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI, turning user errors into one line and exit code."""
    try:
        args = sys.argv[1:] if argv is None else list(argv)
        if args[:1] == ["run"]:
            # Straight to the run command, skipping click's group dispatch: fewer
            # frames under the profiled program (see memlens.cli._reexec).
            from memlens.cli.run import main as run_main

            return run_main(args[1:])
        if args[:2] == ["context", "fit"]:
            # `context FILE` takes a path, so its `fit` sub-command is routed here
            from memlens.cli.context_fit import command as fit_command

            return fit_command.main(
                args=args[2:], prog_name="memlens context fit", standalone_mode=False
            )
        return cli.main(args=args, prog_name="memlens", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("memlens: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MemlensError as exc:
        from memlens.report.safe import printable

        click.echo(f"memlens: error: {printable(exc, one_line=True)}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
