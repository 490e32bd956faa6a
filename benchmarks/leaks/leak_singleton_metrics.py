"""A metrics singleton keyed by an unbounded label (the user id)."""

from leakapp.metrics import track_request

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leakapp/metrics.py#metrics",
    "root": "registry",
}


def step(i: int) -> None:
    track_request("/api/items", user_id=i, seconds=0.01)
