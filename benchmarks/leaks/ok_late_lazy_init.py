"""A big table initialised once, late in the run (at the 130th call)."""

EXPECTED = {"leak": False}

_calls = 0
_table: list[str] | None = None


def step(i: int) -> None:
    global _calls, _table
    _calls += 1
    if _calls >= 130 and _table is None:
        _table = [f"entry {k}" for k in range(20000)]
