"""Reply callbacks (closures over the request) are parked per id and never popped."""

EXPECTED = {
    "leak": True,
    "category": "closure_registry",
    "site": "leak_closure_pending.py#pending",
    "root": "_pending",
}

_pending: dict = {}


def _make_reply(rid: int):
    body = f"reply body {rid} " + "r" * 900  # leak-site: pending

    def reply() -> str:
        return body

    return reply


def send(rid: int) -> None:
    _pending[rid] = _make_reply(rid)


def step(i: int) -> None:
    send(i)
