"""Raw response bodies (bytes: not tracked by the GC) pile up in a deque."""

import collections

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leak_bytes_deque.py#bytes",
    "root": "_history",
}

_history: collections.deque = collections.deque()


def _fetch(i: int) -> bytes:
    return (b"%d:" % i) + b"\x00" * 900  # leak-site: bytes


def _keep(body: bytes) -> None:
    _history.append(body)


def step(i: int) -> None:
    _keep(_fetch(i))
