"""``memlens context fit FILE --budget 50k``: preview and write a request fitted to a budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from memlens.core.errors import ConfigError


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


@click.command(name="fit")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--budget", "-b", required=True, help="Token budget to fit into (e.g. 50k, 128000).")
@click.option(
    "--model", "-m", help="Model name (its tokenizer counts; its window caps the budget)."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the fitted request (JSON) here.",
)
@click.option("--dry-run", is_flag=True, help="Only show what would be done; write nothing.")
@click.option(
    "--keep-last-turns",
    type=click.IntRange(0),
    default=2,
    show_default=True,
    help="Turns at the end that stay verbatim.",
)
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Preview format.",
)
def command(
    file: Path,
    budget: str,
    model: str | None,
    output: Path | None,
    dry_run: bool,
    keep_last_turns: int,
    fmt: str,
) -> None:
    """Fit FILE (an OpenAI chat or Anthropic Messages request, or a Claude Code
    transcript) into a token budget: show what is kept, summarised and evicted and the
    resulting profile, and write the fitted request with -o."""
    from memlens.context.memory.messages import fit_messages
    from memlens.context.memory.requests import load_request

    if output is not None and output.resolve() == file.resolve():
        raise ConfigError("--output must not be the input file (the original is kept)")
    request_format, request = load_request(file)
    result = fit_messages(
        request["messages"],
        budget=budget,
        model=model or request.get("model"),
        tools=request.get("tools"),
        system=request.get("system"),
        format=request_format,
        keep_last_turns=keep_last_turns,
    )
    fitted = result.request(
        **{k: v for k, v in request.items() if k not in ("messages", "system", "tools")}
    )
    profile = result.profile()
    if fmt == "json":
        data = result.to_dict()
        data["messages_before"] = len(request["messages"])
        data["profile"] = profile.summary()
        data["written"] = str(output) if output is not None and not dry_run else None
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _preview(result, profile, len(request["messages"]))
    if output is not None and not dry_run:
        _write(output, fitted)
        click.echo(f"wrote {output} ({result.tokens_after:,} tokens)", err=True)
    elif output is None and not dry_run:
        click.echo("(preview only: pass -o FILE to write the fitted request)", err=True)


def _preview(result: Any, profile: Any, messages_before: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    report = result.report
    saved = result.tokens_before - result.tokens_after
    console.print(
        f"[bold]fit[/bold] {result.format}: {result.tokens_before:,} → {result.tokens_after:,} "
        f"tokens (budget {result.budget:,}; saved {saved:,}, "
        f"{result.tokens_after / max(1, result.tokens_before):.1%} of the original)"
    )
    console.print(f"actions: {', '.join(report.actions) or 'none (already fits)'}")
    table = Table(title="what happens to each item")
    for column in ("", "items", "tokens before", "tokens after", "ratio", "target"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("kept verbatim", str(len(report.kept)), "", "", "", "")
    for name, row in report.per_level.items():
        table.add_row(
            name,
            str(int(row["items"])),
            f"{int(row['original_tokens']):,}",
            f"{int(row['tokens']):,}",
            f"{row['ratio']:.1%}",
            f"{row['target']:.0%}",
        )
    table.add_row("evicted (archived)", str(len(report.evicted)), "", "", "", "")
    console.print(table)
    console.print(f"messages: {messages_before} → {len(result.messages)}")
    layers = Table(title="resulting profile")
    layers.add_column("layer")
    layers.add_column("tokens", justify="right")
    layers.add_column("share of budget", justify="right")
    for layer in profile.layers.values():
        if layer.tokens:
            layers.add_row(layer.layer.label, f"{layer.tokens:,}", f"{layer.share:.1%}")
    console.print(layers)
    console.print(f"status: {profile.status} ({profile.utilization:.1%} of the budget)")
    for note in report.notes:
        console.print(f"note: {note}")
