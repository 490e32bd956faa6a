"""Each event is concatenated onto a module-level pandas DataFrame that only grows."""

import pandas as pd

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_pandas_concat_history.py#concat",
    "root": "history",
}

history = pd.DataFrame({"id": [0], "value": [0.0]})


def step(i: int) -> None:
    global history
    row = pd.DataFrame({"id": [i] * 8, "value": [i * 0.5] * 8})
    history = pd.concat([history, row], ignore_index=True)  # leak-site: concat
