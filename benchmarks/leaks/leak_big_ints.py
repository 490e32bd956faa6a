"""Request ids (ints, untracked by the GC) are appended to a list forever."""

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leak_big_ints.py#ints",
    "root": "_seen_ids",
}

_seen_ids: list[int] = []


def _request_id(i: int) -> int:
    return (i + 1) * 10**40 + 12345  # leak-site: ints


def step(i: int) -> None:
    _seen_ids.append(_request_id(i))
