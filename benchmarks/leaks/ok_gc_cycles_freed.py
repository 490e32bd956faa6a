"""Reference cycles created and dropped every step; the (enabled) GC frees them."""

from leakapp.tree import build_tree

EXPECTED = {"leak": False}


def step(i: int) -> None:
    build_tree(i)
