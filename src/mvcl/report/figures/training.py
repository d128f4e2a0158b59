"""Training and validation loss of every configuration in one figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def plot_training(histories: dict[str, pd.DataFrame], out: str | Path) -> None:
    """One panel per configuration (losses differ in scale between temperatures): train and validation loss,
    with the chance loss and the loss floor of the head's output space when the history records them."""
    n = len(histories)
    columns = min(4, n)
    rows = int(np.ceil(n / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.9 * rows), squeeze=False)
    for axis, (name, history) in zip(axes.flat, histories.items(), strict=False):
        axis.plot(history["epoch"], history["train_loss"], label="train")
        axis.plot(history["epoch"], history["val_loss"], label="validation")
        for column, style, label in (("val_chance", ":", "val chance"), ("val_floor", "--", "val floor")):
            if column in history and history[column].notna().any():
                axis.plot(
                    history["epoch"],
                    history[column],
                    color="black",
                    linestyle=style,
                    linewidth=0.8,
                    label=label,
                )
        best = history["val_loss"].idxmin()
        axis.scatter(
            history.loc[best, "epoch"], history.loc[best, "val_loss"], color="tab:red", zorder=3, s=12
        )
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("epoch")
        axis.set_ylabel("loss")
        axis.legend(fontsize=7)
    for axis in list(axes.flat)[n:]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
