"""A mutable default argument accumulates every item ever seen."""

from leakapp.collect import collect

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leakapp/collect.py#default",
    "root": "seen",
}


def step(i: int) -> None:
    collect(f"  Item-{i}  ")
