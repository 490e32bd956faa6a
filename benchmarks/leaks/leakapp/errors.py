"""Errors are kept for a dashboard, tracebacks (and frames) included."""

from __future__ import annotations

_errors: list[BaseException] = []


def _validate(data: bytes) -> None:
    scratch = bytearray(data) * 2  # leak-site: errors
    if scratch[0] == 0:
        raise ValueError("bad record")


def _process(data: bytes) -> None:
    _validate(data)


def ingest(data: bytes) -> bool:
    try:
        _process(data)
    except ValueError as exc:
        _errors.append(exc)
        return False
    return True
