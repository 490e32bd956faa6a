"""Per-user history in a defaultdict(list): ten users, each list grows forever."""

import collections

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leak_defaultdict_lists.py#history",
    "root": "_history",
}

_history: collections.defaultdict = collections.defaultdict(list)


def _record(user: int, i: int) -> None:
    _history[user].append(f"{user}:{i}:" + "h" * 400)  # leak-site: history


def step(i: int) -> None:
    _record(i % 10, i)
