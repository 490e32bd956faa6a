"""A pandas DataFrame built, grouped and aggregated per request, then dropped."""

import pandas as pd

EXPECTED = {"leak": False}


def step(i: int) -> None:
    df = pd.DataFrame({"k": [k % 7 for k in range(300)], "v": [float(k + i) for k in range(300)]})
    df.groupby("k")["v"].agg(["sum", "mean"]).reset_index()
