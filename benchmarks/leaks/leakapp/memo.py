"""Hand-written memoization keyed by something unique per call."""

from __future__ import annotations

_memo: dict[tuple[str, int], str] = {}


def _render_uncached(template: str, rid: int) -> str:
    return (template % rid) * 30  # leak-site: memo


def render(template: str, rid: int) -> str:
    key = (template, rid)
    if key in _memo:
        return _memo[key]
    out = _render_uncached(template, rid)
    _memo[key] = out
    return out
