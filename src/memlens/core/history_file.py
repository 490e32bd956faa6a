"""The monitor's history file: one checksummed, atomically replaced file per service.

The always-on monitor keeps its history here rather than in the session store, so
the process it watches never loads ``sqlite3``, the store or ``json`` (about 6 MiB
of resident memory, issue #15). The store reads these files whenever it is opened
(:mod:`memlens.store.history`), so ``monitor-<service>`` is a stored session like
any other, and a restarted monitor continues its history from the file directly.

Layout, next to the SQLite file ``P``: ``P.history/<session id>.mlh``. A file is::

    b"memlens-history 1\\n"   magic and format version
    64 hex digits, b"\\n"      SHA-256 of the payload
    payload                   zlib(marshal(session dict, version 4))

The session dict is ``Session.to_dict()``'s, except that its ``series`` is *packed*
(:func:`pack_series`): each ring's float columns as raw bytes, in time order. A
30-day history is ~0.4 MB of such bytes but ~2.6 MiB as the lists ``to_dict``
builds, and the flush runs in the watched process; :func:`series_of` rebuilds the
``Series`` from the bytes at restore, :func:`session_dict` gives the store the usual
dict.

``marshal`` and ``zlib`` are C modules that cost a few hundred kilobytes where
``json`` costs 1.3 MiB (it loads ``re`` and ``enum``). Marshal format 4 (Python
>= 3.4) encodes the plain types a session dict holds (dict, list, str, int, float,
bool, None) the same way in every Python since; :func:`read` verifies the checksum
before decoding anything and refuses any other type in the result, so a damaged or
foreign file is reported in one line and never half-read. A file is written to a
temporary name in the same directory, fsynced, then renamed over the old one: a
reader sees the previous history or the new one, never a torn file.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys
import zlib
from array import array
from collections.abc import Mapping
from typing import Any

from memlens.core.digest import sha256_hex
from memlens.core.errors import StoreError
from memlens.core.series import Series, TierSpec

MAGIC = b"memlens-history 1\n"
SUFFIX = ".mlh"
DIR_SUFFIX = ".history"
_HEADER = len(MAGIC) + 65  # magic, 64 hex digits, newline
_MARSHAL_VERSION = 4
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@")
_PLAIN = (str, int, float, bool, bytes, type(None))
_PACKED = "packed-1"


class HistoryFileError(StoreError):
    """A history file that is missing its header, fails its checksum or cannot be decoded."""


def directory_for(db_path: str | os.PathLike[str]) -> str:
    """The directory that holds the history files of the SQLite store at ``db_path``."""
    return os.fspath(db_path) + DIR_SUFFIX


def file_name(session_id: str) -> str:
    """The file name for ``session_id``: safe characters kept, the others as ``%XX``."""
    out = []
    for ch in session_id:
        if ch in _SAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    name = "".join(out)
    if name.startswith("."):  # never a hidden (or temporary) file
        name = "%2E" + name[1:]
    return name + SUFFIX


def path_for(db_path: str | os.PathLike[str], session_id: str) -> str:
    """Where the history of ``session_id`` lives for the store at ``db_path``."""
    return os.path.join(directory_for(db_path), file_name(session_id))


def encode(data: Mapping[str, Any]) -> tuple[bytes, str]:
    """``(file bytes, hex SHA-256 of the payload)`` for a plain session dict."""
    # A 4 KiB window and a small hash table: ~24 KiB of deflate state instead of the
    # default 256 KiB (which showed in the monitor's peak RSS), for files ~4 % larger.
    packer = zlib.compressobj(6, zlib.DEFLATED, 12, 4)
    raw = marshal.dumps(dict(data), _MARSHAL_VERSION)
    payload = packer.compress(raw) + packer.flush()
    digest = sha256_hex(payload)
    return MAGIC + digest.encode("ascii") + b"\n" + payload, digest


def write(path: str, data: Mapping[str, Any]) -> str:
    """Atomically replace the history file at ``path``; returns the payload's digest.

    Raises ``ValueError`` for data marshal cannot encode and ``OSError`` for the disk.
    """
    blob, digest = encode(data)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    # One temporary name per process: two processes with the same service name
    # never write into each other's file; the rename decides which history is kept.
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return digest


def read_digest(path: str) -> str | None:
    """The digest in the file's header, without reading the rest; ``None`` if unreadable."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEADER)
    except OSError:
        return None
    if len(head) != _HEADER or not head.startswith(MAGIC) or head[-1:] != b"\n":
        return None
    return head[len(MAGIC) : -1].decode("ascii", "replace")


def decode(blob: bytes, what: str) -> tuple[dict[str, Any], str]:
    """Verify and decode file bytes made by :func:`encode`: ``(session dict, digest)``.

    Raises :class:`HistoryFileError` (one line, naming ``what``) for anything else.
    """
    if not blob.startswith(MAGIC):
        if blob.startswith(MAGIC[:16]):
            raise HistoryFileError(
                f"{what} was written by a newer memlens (format {blob[16:17]!r})"
            )
        raise HistoryFileError(f"{what} is not a memlens history file (or is truncated)")
    if len(blob) < _HEADER or blob[_HEADER - 1 : _HEADER] != b"\n":
        raise HistoryFileError(f"{what} is truncated")
    digest = blob[len(MAGIC) : _HEADER - 1].decode("ascii", "replace")
    payload = blob[_HEADER:]
    if sha256_hex(payload) != digest:
        raise HistoryFileError(f"{what} is corrupted (checksum mismatch)")
    try:
        data = marshal.loads(zlib.decompress(payload))
    except (zlib.error, ValueError, EOFError, TypeError) as exc:
        raise HistoryFileError(f"{what} cannot be decoded: {exc}") from exc
    if not isinstance(data, dict) or not _is_plain(data):
        raise HistoryFileError(f"{what} does not hold a session")
    return data, digest


def read(path: str) -> tuple[dict[str, Any], str]:
    """The session dict in the history file at ``path`` and its digest (see :func:`decode`).

    A missing file raises ``FileNotFoundError``; a damaged one :class:`HistoryFileError`.
    """
    with open(path, "rb") as handle:
        blob = handle.read()
    return decode(blob, f"history file {path}")


def pack_series(series: Series) -> dict[str, Any]:
    """``series`` with each ring's columns as bytes in time order (see the module docstring).

    Reads the series' rings directly (one module of the same layer; the round trip is
    tested against ``Series.to_dict``).
    """
    return {
        "format": _PACKED,
        "byteorder": sys.byteorder,
        "fields": list(series.fields),
        "raw_capacity": series.raw_capacity,
        "tiers": [[t.width, t.retention] for t in series.tiers],
        "count": series.count,
        "raw": _pack_ring(series._raw),
        "aggregates": [_pack_ring(ring) for ring in series._agg],
        "open": [None if o is None else list(o) for o in series._open],
    }


def series_of(data: Mapping[str, Any], what: str = "history file") -> Series:
    """The ``Series`` in a session dict read from a history file (packed or plain)."""
    packed = data.get("series")
    if not isinstance(packed, Mapping):
        raise HistoryFileError(f"{what} holds no series")
    try:
        if packed.get("format") != _PACKED:
            return Series.from_dict(packed)
        series = Series(
            packed["fields"],
            raw_capacity=int(packed["raw_capacity"]),
            tiers=[TierSpec(float(w), float(r)) for w, r in packed["tiers"]],
        )
        swap = packed["byteorder"] != sys.byteorder
        _unpack_ring(series._raw, packed["raw"], swap)
        if len(packed["aggregates"]) != len(series._agg):
            raise ValueError("tiers and aggregates differ")
        for ring, columns in zip(series._agg, packed["aggregates"]):
            _unpack_ring(ring, columns, swap)
        opened = [None if o is None else [float(v) for v in o] for o in packed["open"]]
        if len(opened) != len(series._agg):
            raise ValueError("tiers and open windows differ")
        series._open = opened
        series.count = int(packed["count"])
    except (KeyError, TypeError, ValueError) as exc:
        raise HistoryFileError(f"{what} holds a damaged series: {exc}") from exc
    return series


def session_dict(data: Mapping[str, Any], what: str = "history file") -> dict[str, Any]:
    """The session dict read from a history file, as ``Session.from_dict`` takes it."""
    out = dict(data)
    out["series"] = series_of(data, what).to_dict()
    return out


def _pack_ring(ring: Any) -> dict[str, Any]:
    columns = []
    for col in ring.columns:
        ordered = col if ring.size < ring.capacity else col[ring.start :] + col[: ring.start]
        columns.append(ordered.tobytes())
    return {"size": ring.size, "columns": columns}


def _unpack_ring(ring: Any, packed: Mapping[str, Any], swap: bool) -> None:
    size = int(packed["size"])
    columns = packed["columns"]
    if len(columns) != len(ring.columns) or not 0 <= size <= ring.capacity:
        raise ValueError(f"a ring of {len(columns)} columns and {size} rows does not fit")
    restored = []
    for raw in columns:
        col = array("d")
        col.frombytes(raw)
        if swap:
            col.byteswap()
        if len(col) != size:
            raise ValueError(f"a column of {len(col)} values in a ring of {size}")
        restored.append(col)
    # Written in time order, so a full ring's oldest row is at 0.
    ring.columns, ring.size, ring.start = restored, size, 0


def _is_plain(value: Any) -> bool:
    """True for plain data only (no code objects or sets from a forged file)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    return False
                stack.append(inner)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif not isinstance(item, _PLAIN):
            return False
    return True
