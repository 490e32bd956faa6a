"""A hand-written memo keyed by (template, request id): never a hit."""

from leakapp.memo import render

EXPECTED = {
    "leak": True,
    "category": "unbounded_memo",
    "site": "leakapp/memo.py#memo",
    "root": "_memo",
}


def step(i: int) -> None:
    render("hello %d ", i)
