"""Session bookkeeping: sessions are remembered and never forgotten."""

from __future__ import annotations

from leakapp.models import Request, Summary

_sessions: dict[int, Summary] = {}


def _summarize(req: Request) -> Summary:
    text = req.body.upper() + "!"  # leak-site: sessions
    return Summary(req.rid, text)


def _remember(req: Request) -> None:
    _sessions[req.rid] = _summarize(req)


def open_session(req: Request) -> int:
    _remember(req)
    return req.rid
