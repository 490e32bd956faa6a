"""Request handlers subscribe to a bus and never unsubscribe."""

from leakapp.events import handle

EXPECTED = {
    "leak": True,
    "category": "listener",
    "site": "leakapp/events.py#events",
    "root": "bus",
}


def step(i: int) -> None:
    handle(i)
