"""Writing report files safely."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from memlens.core.errors import MemlensError


class ReportWriteError(MemlensError):
    """A report file could not be written (bad directory, permissions, full disk)."""


def write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file and a rename.

    A reader (or a browser reloading the report) never sees half a file, and an
    existing report is only replaced once the new one is complete.
    """
    path = Path(path)
    if path.is_dir():
        raise ReportWriteError(f"cannot write {path}: it is a directory")
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ReportWriteError(f"cannot write {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ReportWriteError(f"cannot write {path}: {exc.strerror}") from exc
    return path
