"""A chart per report with pyplot, never closed: pyplot's figure registry keeps them."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_matplotlib_open_figures.py#figure",
    "root": "Gcf",
}


def chart(i: int) -> None:
    fig, ax = plt.subplots(figsize=(2, 2))  # leak-site: figure
    ax.plot([0, 1, 2], [i, i + 1, i])


def step(i: int) -> None:
    chart(i)
