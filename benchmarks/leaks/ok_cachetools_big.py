"""A cachetools.LRUCache(maxsize=5000) used by hand: it fills for a long time, but it
is bounded."""

import cachetools

EXPECTED = {"leak": False}

_profiles: cachetools.LRUCache = cachetools.LRUCache(maxsize=5000)


def _profile(user_id: int) -> str:
    cached = _profiles.get(user_id)
    if cached is None:
        cached = _profiles[user_id] = f"profile {user_id} " + "p" * 400
    return cached


def step(i: int) -> None:
    _profile(i)
