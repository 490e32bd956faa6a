"""A third-party memo: cachetools.cached with a plain dict (no bound)."""

import cachetools

EXPECTED = {
    "leak": True,
    "category": "unbounded_memo",
    "site": "leak_cachetools_memo.py#cachetools",
    "root": "lookup_user",
    "library": "cachetools",
}


@cachetools.cached(cache={})
def lookup_user(user_id: int) -> str:
    return f"user-{user_id}:" + "u" * 700  # leak-site: cachetools


def step(i: int) -> None:
    lookup_user(i)
