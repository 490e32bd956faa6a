"""``memlens export ID``: a session's raw samples as CSV or JSON Lines."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from memlens.cli._store_options import db_option, reading_store
from memlens.core.series import Series
from memlens.report.output import write_atomically


@click.command()
@db_option
@click.option(
    "-f", "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@click.option("-o", "--output", metavar="PATH", help="Write here instead of stdout.")
@click.option(
    "--history",
    is_flag=True,
    help="Export the whole history: older windows as min/mean/max aggregates, then raw samples.",
)
@click.argument("session_id", metavar="ID")
def command(db: str | None, fmt: str, output: str | None, history: bool, session_id: str) -> None:
    """Export the samples of session ID: one row per sample, seconds since start.

    Byte fields are in bytes; a field a sample lacks is empty (CSV) or absent (JSONL).
    A long run (a monitor) keeps only its recent samples raw and older ones as
    aggregates; ``--history`` exports those too.
    """
    store = reading_store(db)
    try:
        series = store.samples(session_id)
    finally:
        store.close()
    if history:
        rows = history_rows(series)
        lines = csv_rows(rows) if fmt == "csv" else (json.dumps(r) + "\n" for r in rows)
        note = (
            f"{len(rows)} rows (aggregated windows and raw samples) covering {series.count} samples"
        )
    else:
        lines = csv_lines(series) if fmt == "csv" else jsonl_lines(series)
        note = f"{len(series)} samples"
        if series.count > len(series):
            note = (
                f"{len(series)} raw samples of {series.count} recorded (the older ones are "
                "kept as aggregates: --history exports them)"
            )
    if output in (None, "-") and series.count > len(series):
        click.echo(f"memlens: {note}", err=True)
    if output is None or output == "-":
        stream = sys.stdout
        try:
            for line in lines:
                stream.write(line)
            stream.flush()
        except BrokenPipeError:
            # `memlens export … | head` is fine: the reader has what it wanted.
            _silence_stdout()
        return
    path = write_atomically(Path(output), "".join(lines))
    click.echo(f"memlens: {note} written to {path}", err=True)


def _number(value: float) -> float | int:
    return int(value) if value.is_integer() else value


def csv_lines(series: Series) -> Iterator[str]:
    """CSV text, one line at a time: header ``t,<fields…>`` then one row per sample."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = [series.column(name) for name in series.fields]
    writer.writerow(["t", *series.fields])
    for i, t in enumerate(series.times()):
        writer.writerow(
            [round(t, 6)] + ["" if math.isnan(col[i]) else _number(col[i]) for col in columns]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


def history_rows(series: Series) -> list[dict[str, float | int]]:
    """The best-resolution history: one row per window or raw sample, oldest first.

    A row has ``t`` (window start), ``width`` (seconds; 0 for a raw sample), ``count``
    (samples in the window) and ``<field>_min``, ``<field>_mean``, ``<field>_max``.
    """
    rows: dict[tuple[float, float], dict[str, float | int]] = {}
    for name in series.fields:
        for agg in series.points(name):
            row = rows.setdefault(
                (agg.start, agg.width),
                {"t": round(agg.start, 6), "width": agg.width, "count": agg.count},
            )
            row[f"{name}_min"] = _number(agg.min)
            row[f"{name}_mean"] = _number(agg.mean)
            row[f"{name}_max"] = _number(agg.max)
    return [rows[key] for key in sorted(rows)]


def csv_rows(rows: list[dict[str, float | int]]) -> Iterator[str]:
    """CSV text of dict rows; the header is the union of their keys, in first-seen order."""
    header: dict[str, None] = {}
    for row in rows:
        header.update(dict.fromkeys(row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    yield buffer.getvalue()


def jsonl_lines(series: Series) -> Iterator[str]:
    """One JSON object per sample: ``{"t": …, "<field>": …}``."""
    for sample in series.samples():
        record: dict[str, float | int] = {"t": round(sample.t, 6)}
        record.update({k: _number(v) for k, v in sample.values.items()})
        yield json.dumps(record) + "\n"


def _silence_stdout() -> None:
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
