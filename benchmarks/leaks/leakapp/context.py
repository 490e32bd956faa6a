"""Per-thread request context that is appended to and never reset."""

from __future__ import annotations

import threading

_ctx = threading.local()


def _trail() -> list[str]:
    trail = getattr(_ctx, "trail", None)
    if trail is None:
        trail = _ctx.trail = []
    return trail


def note(rid: int) -> None:
    _trail().append(f"step {rid}: " + "." * 600)  # leak-site: tls
