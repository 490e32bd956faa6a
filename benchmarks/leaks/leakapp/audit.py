"""An audit trail kept on a class attribute."""

from __future__ import annotations


class AuditLog:
    entries: list[str] = []

    @classmethod
    def record(cls, user: str, action: str, detail: str) -> None:
        line = f"{user}:{action}:{detail}" * 8  # leak-site: audit
        cls.entries.append(line)


def audit(user: str, action: str, detail: str) -> None:
    AuditLog.record(user, action, detail)
