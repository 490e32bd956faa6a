"""Monitor history files brought into the SQLite store whenever it is opened.

The always-on monitor writes its history to a file next to the database
(:mod:`memlens.core.history_file`) so the watched process never loads the store.
:func:`ingest` saves each file that changed since it was last brought in as the
session it holds (``monitor-<service>``), so listing, showing, reporting and
exporting see the monitor's whole history as before. The rules:

- a file is read when its digest, size or modification time differ from those
  recorded beside it when it was last brought in (``<file>.ingested``), so an
  unchanged file costs two small reads per open; it is verified in full then, and
  saved again only when its content changed;
- a damaged file (bad header, checksum mismatch, undecodable) is reported in one
  line on stderr and changes nothing: the stored session stays as it was;
- a stored session is replaced only by a history that continues it (the same
  ``wall_origin``); a history that starts afresh (a restart whose clocks disagreed,
  a damaged file, a session saved by an older memlens) first keeps the stored one as
  ``<id>@<its start, UTC>``, so nothing stored is ever lost;
- ``rm`` of a monitor session removes its file too (:func:`forget`), or it would
  come back at the next open; a writer's temporary file older than ten minutes
  (its process died mid-write) is removed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable

from memlens.core import history_file
from memlens.core.clock import utc_iso
from memlens.core.errors import MemlensError, NotFoundError, StoreError
from memlens.core.session import Session

MARKER = ".ingested"
#: A temporary file this old was left by a writer that died (a write takes < 1 s).
STALE_SECONDS = 600.0


def pending(db_path: str) -> list[str]:
    """History files of the store at ``db_path`` that changed since they were brought in."""
    directory = history_file.directory_for(db_path)
    try:
        names = sorted(os.listdir(directory))
    except OSError:  # no history directory: the common case, one stat
        return []
    out = []
    for name in names:
        if name.startswith(".") and name.endswith(".tmp"):
            _drop_if_stale(os.path.join(directory, name))
            continue
        if name.startswith(".") or not name.endswith(history_file.SUFFIX):
            continue
        path = os.path.join(directory, name)
        if _read_marker(path) != _stamp(path, history_file.read_digest(path)):
            out.append(path)
    return out


def ingest(
    db_path: str,
    open_writable: Callable[[], object],
    report: Callable[[str], None] | None = None,
) -> int:
    """Bring the changed history files of ``db_path`` into the store; returns how many.

    ``open_writable()`` opens the store for writing (it is called only when a file
    changed); problems go to ``report`` (default: one line on stderr) and never stop
    the command that opened the store.
    """
    say = report or _stderr
    paths = pending(db_path)
    if not paths:
        return 0
    try:
        store = open_writable()
    except MemlensError as exc:
        say(f"monitor history in {history_file.directory_for(db_path)} not brought in: {exc}")
        return 0
    done = 0
    try:
        for path in paths:
            try:
                done += _ingest_one(store, path)
            except MemlensError as exc:
                say(str(exc))
    finally:
        store.close()  # type: ignore[attr-defined]
    return done


def _drop_if_stale(path: str) -> None:
    """Remove a writer's temporary file left by a process that died while writing it."""
    with contextlib.suppress(OSError):
        if time.time() - os.stat(path).st_mtime > STALE_SECONDS:
            os.unlink(path)


def forget(db_path: str, session_id: str) -> None:
    """Remove the history file of ``session_id`` (after ``rm``), and its marker."""
    path = history_file.path_for(db_path, session_id)
    for name in (path, path + MARKER):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _ingest_one(store: object, path: str) -> int:
    try:
        data, digest = history_file.read(path)
    except FileNotFoundError:  # removed meanwhile (rm, or the directory was cleaned)
        return 0
    except OSError as exc:
        raise StoreError(f"history file {path} cannot be read: {exc}") from exc
    except history_file.HistoryFileError as exc:
        raise StoreError(f"{exc}; the stored session is kept as it was") from exc
    recorded = _read_marker(path)
    if recorded is not None and recorded.split(" ", 1)[0] == digest:
        _write_marker(path, digest)  # the same content, touched: nothing to save again
        return 0
    try:
        session = Session.from_dict(history_file.session_dict(data, f"history file {path}"))
    except history_file.HistoryFileError as exc:
        raise StoreError(f"{exc}; the stored session is kept as it was") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StoreError(
            f"history file {path} does not hold a session ({exc}); the stored session is kept"
        ) from exc
    _keep_what_it_does_not_continue(store, session, path)
    store.save(session)  # type: ignore[attr-defined]
    _write_marker(path, digest)
    return 1


def _keep_what_it_does_not_continue(store: object, session: Session, path: str) -> None:
    """Save the stored session under ``<id>@<start>`` unless ``session`` continues it."""
    rows = store.list(kind=session.kind, verify=False)  # type: ignore[attr-defined]
    if not any(r.id == session.id for r in rows):
        return
    try:
        stored = store.load(session.id)  # type: ignore[attr-defined]
    except NotFoundError:
        return
    except StoreError as exc:
        raise StoreError(
            f"stored session {session.id} cannot be read ({exc}), so history file {path} "
            f"was not brought in over it; `memlens rm {session.id}` lets it in"
        ) from exc
    theirs = stored.tags.get("wall_origin")
    if theirs is not None and theirs == session.tags.get("wall_origin"):
        return  # the same history, further on
    try:
        began = utc_iso(float(theirs)) if theirs is not None else stored.metadata.started_at
    except ValueError:
        began = stored.metadata.started_at
    stored.id = f"{session.id}@{began}"
    store.save(stored)  # type: ignore[attr-defined]


def _stamp(path: str, digest: str | None) -> str | None:
    """What the marker records for the file: its digest, size and modification time."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{digest} {st.st_size} {st.st_mtime_ns}"


def _read_marker(path: str) -> str | None:
    try:
        with open(path + MARKER, encoding="ascii") as handle:
            return handle.read().strip()
    except (OSError, ValueError):
        return None


def _write_marker(path: str, digest: str) -> None:
    tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}{MARKER}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="ascii") as handle:
            handle.write(f"{_stamp(path, digest)}\n")
        os.replace(tmp, path + MARKER)
    except OSError:  # a read-only directory: the file is brought in again next time
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _stderr(message: str) -> None:
    sys.stderr.write(f"memlens: {message}\n")
