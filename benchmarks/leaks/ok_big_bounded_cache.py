"""An lru_cache bounded at 5000 entries: it fills for a long time, but it is bounded."""

import functools

EXPECTED = {"leak": False}


@functools.lru_cache(maxsize=5000)
def _render(key: int) -> str:
    return f"fragment {key} " + "f" * 300


def step(i: int) -> None:
    _render(i)
