"""GC disabled, but the work creates no cycles: refcounting frees everything."""

import gc

EXPECTED = {"leak": False}


def setup() -> None:
    gc.disable()


def teardown() -> None:
    gc.enable()


def step(i: int) -> None:
    rows = [{"id": k, "v": str(k) * 10} for k in range(100)]
    index = {r["id"]: r for r in rows}
    del rows, index
