"""Writing report files safely."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from memlens.core.errors import MemlensError


class ReportWriteError(MemlensError):
    """A report file could not be written (bad directory, permissions, full disk)."""


def _umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fail(path: Path, exc: OSError) -> ReportWriteError:
    return ReportWriteError(f"cannot write {path}: {exc.strerror or exc}")


def write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file and a rename.

    A reader (or a browser reloading the report) never sees half a file, and an
    existing report is only replaced once the new one is complete; on any failure
    (a full disk) the temporary file is removed and the old report is untouched.

    What is at ``path`` is respected: a symbolic link stays a link (the file it
    points to is replaced), a device, FIFO or socket (``/dev/stdout``) is written
    into, never replaced, and the new file keeps an existing file's permissions, or
    follows the umask like any file the user creates.
    """
    path = Path(path)
    try:
        info: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise _fail(path, exc) from exc
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise ReportWriteError(f"cannot write {path}: it is a directory")
    if info is not None and not stat.S_ISREG(info.st_mode):
        try:
            with open(path, "w", encoding="utf-8", errors="replace") as handle:
                handle.write(text)
        except OSError as exc:
            raise _fail(path, exc) from exc
        return path
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    directory = target.parent if str(target.parent) else Path(".")
    mode = stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _fail(path, exc) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _fail(path, exc) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
