"""The classic mutable default argument."""

from __future__ import annotations


def _normalize(item: str) -> str:
    return item.strip().lower() * 20  # leak-site: default


def collect(item: str, seen: list[str] = []) -> int:  # noqa: B006 - the bug on purpose
    seen.append(_normalize(item))
    return len(seen)
