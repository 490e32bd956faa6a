"""``memlens context FILE``: where an assistant's context tokens go, by layer."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from memlens.core.errors import ConfigError

if TYPE_CHECKING:
    from memlens.context.monitor import Thresholds
from memlens.core.units import parse_duration


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text)
        return
    from memlens.report.output import ReportWriteError, write_atomically

    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportWriteError(f"cannot write {output}: {exc.strerror or exc}") from None
    write_atomically(output, text)


@click.command(name="context")
@click.argument("file", type=click.Path(dir_okay=True, path_type=Path))
@click.option(
    "--model",
    "-m",
    help="Model name; its context window is the budget (e.g. claude-sonnet-4-5, gpt-4o).",
)
@click.option(
    "--budget", "-b", help="Token budget, overriding the model's window (e.g. 200k, 128000, 1M)."
)
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["text", "json", "html"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report to this file instead of stdout.",
)
@click.option(
    "--input-format",
    type=click.Choice(["auto", "claude-code", "openai-chat", "anthropic-messages"]),
    default="auto",
    show_default=True,
    help="Input format (detected by default).",
)
@click.option(
    "--models-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file of extra models (same shape as the built-in table).",
)
@click.option(
    "--top",
    type=click.IntRange(1, 500),
    default=10,
    show_default=True,
    help="How many of the largest items to list.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["warning", "critical"]),
    help="Exit with status 1 if an alert at or above this severity is raised (CI).",
)
@click.option(
    "--budget-warning", type=click.FloatRange(0, 1), help="Alert when the window is this full."
)
@click.option(
    "--budget-critical", type=click.FloatRange(0, 1), help="Critical alert at this fullness."
)
@click.option(
    "--working-memory-warning",
    type=click.FloatRange(0, 1),
    help="Alert when working memory uses this share of its allocation.",
)
@click.option(
    "--working-memory-critical",
    type=click.FloatRange(0, 1),
    help="Critical alert for working memory at this share of its allocation.",
)
@click.option(
    "--cache-hit-min", type=click.FloatRange(0, 1), help="Alert below this prompt-cache hit rate."
)
@click.option(
    "--all-sessions",
    is_flag=True,
    help="FILE is a Claude Code project folder: profile each session (default: the latest).",
)
@click.option("--watch", "-w", is_flag=True, help="Follow a live transcript and refresh.")
@click.option("--interval", default="2s", show_default=True, help="Refresh interval with --watch.")
@click.option(
    "--max-refreshes",
    type=click.IntRange(1),
    default=None,
    help="Stop --watch after this many refreshes (default: until interrupted).",
)
def command(
    file: Path,
    model: str | None,
    budget: str | None,
    fmt: str,
    output: Path | None,
    input_format: str,
    models_file: Path | None,
    top: int,
    fail_on: str | None,
    budget_warning: float | None,
    budget_critical: float | None,
    working_memory_warning: float | None,
    working_memory_critical: float | None,
    cache_hit_min: float | None,
    all_sessions: bool,
    watch: bool,
    interval: str,
    max_refreshes: int | None,
) -> None:
    """Profile an assistant's context window by layer: FILE is a Claude Code JSONL
    transcript (or a project folder: its latest session), an OpenAI chat or Anthropic
    Messages request, a LangChain message dump, or JSON Lines of chat messages."""
    from memlens.context.budget import parse_budget
    from memlens.context.diagnose import diagnose
    from memlens.context.models import load_models_file, register_model
    from memlens.context.profiler import ContextProfiler

    if models_file is not None:
        for info in load_models_file(models_file):
            register_model(info)
    tokens = parse_budget(budget)
    seconds = parse_duration(interval)
    thresholds = _thresholds(
        token_budget_warning=budget_warning,
        token_budget_critical=budget_critical,
        working_memory_warning=working_memory_warning,
        working_memory_critical=working_memory_critical,
        cache_hit_rate_min=cache_hit_min,
    )
    worst: list[str] = []
    if all_sessions:
        if not file.is_dir():
            raise ConfigError("--all-sessions needs a Claude Code project folder")
        if watch or fmt == "html":
            raise ConfigError("--all-sessions works with --format text or json, without --watch")
        worst = _each_session(file, model, tokens, input_format, fmt, output, top, thresholds)
        _exit_on_alerts(worst, fail_on)
        return
    profiler = ContextProfiler(file, model=model, budget=tokens, input_format=input_format)
    if file.is_dir():
        click.echo(f"memlens: profiling the latest session, {profiler.path.name}", err=True)

    def refresh(count: int) -> None:
        profile = profiler.update()
        diagnosis = diagnose(profile, thresholds)
        worst[:] = [a.severity for a in diagnosis.alerts]
        if fmt == "json":
            data = profile.to_dict()
            data["diagnosis"] = diagnosis.to_dict()
            text = json.dumps(data, indent=None if watch else 2, ensure_ascii=False)
            _emit(text, output)
        elif fmt == "html":
            from memlens.report.context_html import render_html

            html = render_html(profile, diagnosis, top=max(top, 20))
            if output is None:
                raise ConfigError("--format html needs --output FILE")
            _emit(html, output)
            click.echo(
                f"wrote {output} ({profile.status}, {profile.utilization:.1%} used)", err=True
            )
        else:
            from memlens.report import context_text
            from memlens.report.console import output_console

            if output is not None:
                _emit(context_text.render_to_string(profile, diagnosis, top=top), output)
                return
            console = output_console()
            if watch and console.is_terminal:
                console.clear()
            elif watch and count:
                console.rule(f"refresh {count + 1}")
            context_text.render(profile, diagnosis, console=console, top=top)

    if fmt == "html" and output is None:
        raise ConfigError("--format html needs --output FILE")
    if not watch:
        refresh(0)
        _exit_on_alerts(worst, fail_on)
        return
    count = 0
    try:
        while True:
            refresh(count)
            count += 1
            sys.stdout.flush()
            if max_refreshes is not None and count >= max_refreshes:
                break
            time.sleep(seconds)
    except KeyboardInterrupt:
        click.echo("memlens: stopped watching", err=True)
    _exit_on_alerts(worst, fail_on)


_RANK = {"warning": 1, "critical": 2}


def _thresholds(**given: float | None) -> Thresholds:
    """Alert thresholds: defaults < ``context_thresholds`` in the config < options."""
    from memlens.context.monitor import Thresholds
    from memlens.core.config import load_config

    values: dict[str, float] = dict(load_config().context_thresholds)
    values.update({k: v for k, v in given.items() if v is not None})
    return Thresholds(**values)  # type: ignore[arg-type]  # names checked by Config


def _exit_on_alerts(severities: list[str], fail_on: str | None) -> None:
    """With ``--fail-on``, exit 1 when an alert at or above that severity was raised."""
    if fail_on is None:
        return
    hits = [s for s in severities if _RANK.get(s, 0) >= _RANK[fail_on]]
    if hits:
        click.echo(f"memlens: {len(hits)} alert(s) at or above {fail_on}", err=True)
        sys.exit(1)


def _each_session(
    folder: Path,
    model: str | None,
    budget: int | None,
    input_format: str,
    fmt: str,
    output: Path | None,
    top: int,
    thresholds: Thresholds,
) -> list[str]:
    """Profile every session of a project folder, oldest first; one bad one is a line.

    Returns the severities of every session's alerts."""
    from memlens.context.diagnose import diagnose
    from memlens.context.profiler import ContextProfiler, project_sessions
    from memlens.core.errors import MemlensError
    from memlens.report import context_text

    reports: list[dict] = []
    texts: list[str] = []
    severities: list[str] = []
    for path in project_sessions(folder):
        try:
            profile = ContextProfiler(
                path, model=model, budget=budget, input_format=input_format
            ).update()
        except MemlensError as exc:
            click.echo(f"memlens: skipped {path.name}: {exc}", err=True)
            continue
        diagnosis = diagnose(profile, thresholds)
        severities.extend(a.severity for a in diagnosis.alerts)
        if fmt == "json":
            data = profile.to_dict()
            data["diagnosis"] = diagnosis.to_dict()
            reports.append(data)
        else:
            texts.append(
                f"== {path.name}\n" + context_text.render_to_string(profile, diagnosis, top=top)
            )
    if fmt == "json":
        _emit(json.dumps(reports, indent=2, ensure_ascii=False), output)
    else:
        _emit("\n".join(texts), output)
    return severities
