"""A thread-local trail in the main thread grows with every request."""

from leakapp.context import note

EXPECTED = {
    "leak": True,
    "category": "thread_local",
    "site": "leakapp/context.py#tls",
    "root": "_ctx",
}


def step(i: int) -> None:
    note(i)
