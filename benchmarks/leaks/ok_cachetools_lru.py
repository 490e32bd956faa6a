"""cachetools.LRUCache(maxsize=100) as a memo: bounded."""

import cachetools

EXPECTED = {"leak": False}


@cachetools.cached(cache=cachetools.LRUCache(maxsize=100))
def lookup(user_id: int) -> str:
    return f"user {user_id} " + "u" * 600


def step(i: int) -> None:
    lookup(i)
