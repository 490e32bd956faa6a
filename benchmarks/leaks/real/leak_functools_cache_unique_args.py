"""functools.cache on a function called with a new argument every time."""

import functools

EXPECTED = {
    "leak": True,
    "category": "unbounded_memo",
    "site": "real/leak_functools_cache_unique_args.py#value",
    "root": "quote_for",
}


@functools.cache
def quote_for(order_id: int) -> list[float]:
    return [order_id * 0.01 + k for k in range(25)]  # leak-site: value


def step(i: int) -> None:
    quote_for(i)
