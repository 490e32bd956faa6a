"""Keeping a one-row numpy slice of each batch keeps the whole batch alive (its base)."""

import numpy as np

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_numpy_slice_keeps_base.py#batch",
    "root": "_first_rows",
}

_first_rows: list[np.ndarray] = []
_rng = np.random.default_rng(0)


def step(i: int) -> None:
    batch = _rng.random((64, 8))  # leak-site: batch
    _first_rows.append(batch[:1])
