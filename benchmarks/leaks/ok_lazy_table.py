"""A lookup table built lazily, one entry per distinct key (50 keys in all)."""

EXPECTED = {"leak": False}

_table: dict[int, list[int]] = {}


def _entry(key: int) -> list[int]:
    row = _table.get(key)
    if row is None:
        row = _table[key] = [key * k for k in range(100)]
    return row


def step(i: int) -> None:
    _entry(i % 50)
