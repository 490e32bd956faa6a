"""The service disables the cyclic GC; parse trees (cycles) are never freed."""

import gc

from leakapp.tree import build_tree

EXPECTED = {
    "leak": True,
    "category": "gc_disabled_cycles",
    "site": "leakapp/tree.py#tree",
    "root": "unreachable",
}


def setup() -> None:
    gc.disable()


def teardown() -> None:
    gc.enable()


def step(i: int) -> None:
    build_tree(i)
