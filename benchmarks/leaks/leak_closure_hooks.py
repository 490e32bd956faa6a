"""Cleanup closures are registered per request and never removed."""

from leakapp.hooks import process

EXPECTED = {
    "leak": True,
    "category": "closure_registry",
    "site": "leakapp/hooks.py#hooks",
    "root": "_cleanup_hooks",
}


def step(i: int) -> None:
    process(i)
