"""The JSON face: the session exactly as stored, for tools and diffs.

``Session.from_json(render_json(s)) == s``; the output is the same document that
``memlens run --json`` writes and that the store keeps.
"""

from __future__ import annotations

from pathlib import Path

from memlens.core.session import Session


def render_json(session: Session, *, indent: int | None = 2) -> str:
    """The session as a JSON document (with a trailing newline)."""
    return session.to_json(indent=indent) + "\n"


def write_json(session: Session, path: str | Path) -> Path:
    """Write :func:`render_json` to ``path``, atomically; return the path."""
    from memlens.report.output import write_atomically

    return write_atomically(Path(path), render_json(session))
