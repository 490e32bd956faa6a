"""An audit deque with maxlen=4000: it fills for a long time, but it is bounded."""

import collections

EXPECTED = {"leak": False}

_audit: collections.deque = collections.deque(maxlen=4000)


def step(i: int) -> None:
    _audit.append(f"audit {i} " + "a" * 300)
