"""Cleanup hooks registered as closures and never run or removed."""

from __future__ import annotations

from collections.abc import Callable

_cleanup_hooks: list[Callable[[], None]] = []


def _on_done(callback: Callable[[], None]) -> None:
    _cleanup_hooks.append(callback)


def process(rid: int) -> int:
    report = [rid] * 200  # leak-site: hooks

    def cleanup() -> None:
        report.clear()

    _on_done(cleanup)
    return len(report)
