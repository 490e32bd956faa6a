"""Recent requests in a deque with maxlen: full after 32 steps, then constant."""

import collections

EXPECTED = {"leak": False}

_recent: collections.deque = collections.deque(maxlen=32)


def step(i: int) -> None:
    _recent.append(f"request {i} " + "r" * 600)
