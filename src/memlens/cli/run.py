"""``memlens run``: run a Python program under a profiling session.

On POSIX the program runs at the bottom of a re-executed interpreter under the same
pid (``cli/_reexec.py``); elsewhere, and for modules that are not plain source
files, in this process (``cli/_program.py``).

The program's stdout is left untouched; memlens writes its summary and messages
to stderr, so ``memlens run app.py > out.txt`` captures only the program's output.
memlens exits with the program's exit code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from memlens.cli._program import Program
from memlens.cli._run_session import Outputs, Plan, Started, finish, start
from memlens.cli._store_options import db_option, store_target
from memlens.core.errors import ConfigError
from memlens.core.units import parse_duration
from memlens.store import open_store

__all__ = ["Outputs", "Plan", "Started", "command", "execute", "finish", "main", "plan", "start"]


@click.command(
    context_settings={"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]}
)
@click.option("-m", "as_module", is_flag=True, help="Run a module, like `python -m MODULE`.")
@click.option("--name", help="Session name (default: the script or module name).")
@click.option(
    "--interval", default="0.1", show_default=True, help="Sampling interval: 0.1, 50ms, 2s."
)
@click.option(
    "--trace", is_flag=True, help="Exact allocation sites with tracemalloc (the default)."
)
@click.option(
    "--sample",
    is_flag=True,
    help="Sampled allocation sites (memlens's sampling tracer): a few % of CPU, estimates.",
)
@click.option(
    "--sample-interval",
    metavar="SIZE",
    help=(
        "Mean bytes between samples with --sample (default: chosen from the live heap,"
        " 4-512 KiB; smaller is more exact)."
    ),
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


def plan(
    as_module: bool,
    name: str | None,
    interval: str,
    trace: bool,
    sample: bool,
    sample_interval: str | None,
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
    sample_bytes = _sampling(trace, sample, sample_interval, no_trace)
    component_map = parse_components(components)
    program.check()
    component_map = main_module_components(component_map, program)
    if monitor:
        # The program (and any interpreter it or a re-exec starts) sees the same switch
        # as `MEMLENS_MONITOR=1 python app.py`.
        os.environ["MEMLENS_MONITOR"] = "1"
    # Resolve every output path now: the program may change directory.
    launch_dir = Path.cwd()
    outputs = Outputs(
        db=store_target(db),
        html=Path(html_path).absolute() if html_path else None,
        want_html=not no_html,
        json=Path(json_path).absolute() if json_path else None,
        launch_dir=launch_dir,
    )
    return Plan(
        program,
        name or program.name,
        seconds,
        not no_trace and sample_bytes is None,
        trace_depth,
        component_map,
        outputs,
        quiet,
        ["memlens", *sys.argv[1:]],
        sample_bytes,
    )


def execute(plan: Plan) -> None:
    """Profile the program, then store and report the session; exits the process."""
    from memlens.cli._reexec import reexec, should_reexec

    if should_reexec(plan):
        # Problems with the store show here, as one line, before anything runs.
        open_store(plan.outputs.db).close()
        # Continues in a fresh interpreter (see memlens.cli._reexec); returns only for a
        # module whose source does not compile, which runs here, through runpy.
        reexec(plan)
    from memlens.heap.frames import mark_launcher

    mark_launcher(sys.argv[0] if sys.argv else "")  # the console script
    started = start(plan)
    finish(plan, started, plan.program.run())


def _sampling(trace: bool, sample: bool, interval: str | None, no_trace: bool) -> int | None:
    """Bytes between samples for ``--sample``; ``None`` for exact or no tracing."""
    from memlens.core.units import parse_size
    from memlens.heap.sampler import DEFAULT_INTERVAL

    chosen = [
        flag
        for flag, on in (("--trace", trace), ("--sample", sample), ("--no-trace", no_trace))
        if on
    ]
    if len(chosen) > 1:
        raise ConfigError(f"choose one of {', '.join(chosen)}")
    if interval is not None and not sample:
        raise ConfigError("--sample-interval needs --sample")
    if not sample:
        return None
    if interval is None:
        return DEFAULT_INTERVAL
    try:
        size = parse_size(interval)
    except (ValueError, ConfigError):
        raise ConfigError(
            f"invalid --sample-interval {interval!r}: expected a size, e.g. 512KiB"
        ) from None
    if size < 1:
        raise ConfigError(f"invalid --sample-interval {interval!r}: must be at least 1 byte")
    return size


def _interval(text: str) -> float:
    from memlens.profiling import validate_interval

    try:
        return validate_interval(parse_duration(text))
    except ConfigError:
        raise ConfigError(
            f"invalid --interval {text!r}: expected seconds above 0, e.g. 0.1, 50ms or 2s"
        ) from None


def main_module_components(components: dict[str, str], program: Program) -> dict[str, str]:
    """Components whose prefix names the main module, made to work (or warned about).

    The program runs as ``__main__``, so a module prefix naming it (``ingest`` for
    ``ingest.py``, ``pkg.job`` for ``-m pkg.job``) would match nothing and report 0 B.
    For a script the prefix becomes the script's path; for ``-m`` a warning says so.
    """
    main = program.target if program.module else Path(program.target).stem
    out = dict(components)
    for name, prefix in components.items():
        if os.sep in prefix or prefix.endswith(".py"):
            continue
        if main != prefix:
            continue
        if program.module:
            click.echo(
                f"memlens: warning: component {name}={prefix} names the main module, which "
                f"runs as __main__ and matches nothing; name its package's other modules, "
                f"or give its file (e.g. {name}={prefix.replace('.', os.sep)}.py)",
                err=True,
            )
        elif main == prefix:
            out[name] = str(Path(program.target).resolve())
    return out


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
