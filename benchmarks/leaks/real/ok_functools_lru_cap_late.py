"""functools.lru_cache(maxsize=700) over ever-new keys: reaches its bound late."""

import functools

EXPECTED = {"leak": False}


@functools.lru_cache(maxsize=700)
def quote_for(order_id: int) -> list[float]:
    return [order_id * 0.01 + k for k in range(25)]


def step(i: int) -> None:
    quote_for(i)
