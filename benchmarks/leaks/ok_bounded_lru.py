"""An lru_cache with a bound: it fills to 64 entries, then evicts."""

import functools

EXPECTED = {"leak": False}


@functools.lru_cache(maxsize=64)
def _render(key: int) -> str:
    return f"page {key} " + "p" * 500


def step(i: int) -> None:
    _render(i)
