"""Sessions are summarized and remembered in a module dict, never forgotten."""

from leakapp.models import make_request
from leakapp.sessions import open_session

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leakapp/sessions.py#sessions",
    "root": "_sessions",
}


def handle(i: int) -> int:
    return open_session(make_request(i))


def step(i: int) -> None:
    handle(i)
