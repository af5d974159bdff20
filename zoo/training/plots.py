"""Learning curves: loss and each metric, training against validation, one PNG a run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_history(history_csv: Path, out: Path) -> Path:
    """Plot every `x` / `val_x` pair of columns of a Keras CSVLogger file into `out`."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt

    history = pd.read_csv(history_csv)
    names = [c for c in history.columns if c != "epoch" and not c.startswith("val_") and c != "learning_rate"]
    figure, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    epochs = history["epoch"] + 1
    for axis, name in zip(axes[0], names):
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
