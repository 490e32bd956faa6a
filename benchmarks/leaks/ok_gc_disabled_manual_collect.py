"""GC disabled for latency, but the service runs gc.collect() itself every 10 steps."""

import gc

from leakapp.tree import build_tree

EXPECTED = {"leak": False}


def setup() -> None:
    gc.disable()


def teardown() -> None:
    gc.enable()


def step(i: int) -> None:
    build_tree(i)
    if i % 10 == 0:
        gc.collect()
