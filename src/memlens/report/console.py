"""The console a face prints to: the terminal's width on a TTY, wide otherwise.

Piped or redirected output has no width; rich would fall back to 80 columns and wrap
table cells mid-phrase. Off a terminal memlens uses ``COLUMNS`` when it is set, else
:data:`WIDE` (tables are only as wide as their content), so a row stays one line
in a file or a CI log.
"""

from __future__ import annotations

import os
from typing import IO

from rich.console import Console

#: Width used when the output is not a terminal and ``COLUMNS`` is not set.
WIDE = 400


def output_console(file: IO[str] | None = None, **options: object) -> Console:
    """A console for ``file`` (stdout by default) that does not wrap redirected text."""
    console = Console(file=file, highlight=False, **options)  # type: ignore[arg-type]
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return console
    return Console(file=file, highlight=False, width=WIDE, **options)  # type: ignore[arg-type]
