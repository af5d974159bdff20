"""Learning curves: loss and each metric, training against validation, one PNG a run."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

# A two-output model has seven curves (loss, and loss and metrics per output): in one row they
# made a 3150 x 350 image nobody could read without zooming.
PANELS_PER_ROW = 3


def plot_history(history_csv: Path, out: Path) -> Path:
    """Plot every `x` / `val_x` pair of columns of a Keras CSVLogger file into `out`, a panel
    each, at most PANELS_PER_ROW a row."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    history = pd.read_csv(history_csv)
    names = [c for c in history.columns if c != "epoch" and not c.startswith("val_") and c != "learning_rate"]
    columns = min(PANELS_PER_ROW, len(names))
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.5 * rows), squeeze=False)
    for axis in axes.ravel()[len(names):]:
        axis.set_visible(False)
    epochs = history["epoch"] + 1
    for axis, name in zip(axes.ravel(), names):
        axis.plot(epochs, history[name], label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.legend()
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
