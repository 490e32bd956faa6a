"""History trimmed to its newest 50 entries whenever it exceeds 100."""

EXPECTED = {"leak": False}

_history: list[str] = []


def step(i: int) -> None:
    _history.append(f"change {i} " + "h" * 500)
    if len(_history) > 100:
        del _history[:50]
