"""A thread-local scratch list reset at the start of every request."""

import threading

EXPECTED = {"leak": False}

_local = threading.local()


def step(i: int) -> None:
    _local.scratch = []
    for k in range(20):
        _local.scratch.append(f"{i}-{k}" * 10)
