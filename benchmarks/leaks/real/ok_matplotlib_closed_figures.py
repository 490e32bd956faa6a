"""A chart per report with pyplot, closed after use: figure cycles are freed by the GC."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EXPECTED = {"leak": False}


def step(i: int) -> None:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1, 2], [i, i + 1, i])
    plt.close(fig)
