"""An audit trail on a class attribute grows with every action."""

from leakapp.audit import audit

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leakapp/audit.py#audit",
    "root": "entries",
}


def step(i: int) -> None:
    audit(f"user{i % 7}", "login", f"session {i}")
