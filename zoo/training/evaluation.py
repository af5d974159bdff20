"""Evaluate an exported version the way it is served: through its `serving_default` signature.

The dataset, split and task come from the version's model card, so the test rows are the
same ones the trainer held out, and the numbers are directly comparable to the card's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from zoo import repository
from zoo.datasets import Dataset, load_dataset
from zoo.repository import model_card
from zoo.repository.export import load_signature

_BATCH = 4096
_EPSILON = 1e-7  # Keras clips probabilities by the same amount in its cross-entropies


def evaluate_version(models_dir: Path, name: str, version: int | None = None) -> dict[str, Any]:
    """Test-split metrics of an exported version (default: the latest).

    Returns:
        {"version": v, "dataset": name, "rows": n, "metrics": {...}}.
    """
    folder = repository.version_dir(Path(models_dir), name, version)
    card = model_card.read(folder)
    data = dataset_from_card(card)
    signature = load_signature(folder)
    inputs = card["signature"]["inputs"]
    outputs = predict_in_batches(signature, {key: data.test.features[key] for key in inputs}, inputs)
    return {
        "version": int(folder.name),
        "dataset": data.name,
        "rows": len(data.test),
        "metrics": task_metrics(card["task"], outputs, data.test.target),
    }


def dataset_from_card(card: dict[str, Any]) -> Dataset:
    """Reload the dataset a model card records, with the same split and task."""
    dataset = card["dataset"]
    split = dataset["split"]
    selection = {key: split[key] for key in ("classes", "max_train_rows", "scale") if split.get(key) is not None}
    return load_dataset(
        dataset["name"], seed=split["seed"], validation_fraction=split["validation_fraction"],
        # Sources with a canonical test set record none; load_dataset then ignores it.
        test_fraction=split["test_fraction"] or 0.15, task=card["task"], **selection, **dataset["options"],
    )


def training_data_from_card(card: dict[str, Any]) -> Dataset:
    """The dataset a run trained on: the card's, with the labelled traffic rows it added to
    the training split (its validation and test splits are the dataset's own)."""
    data = dataset_from_card(card)
    config = card.get("config", {})
    if config.get("traffic"):
        from zoo.loop.traffic import add_traffic

        data = add_traffic(data, config["traffic"], config.get("traffic_recent", 0.0))
    return data


def predict_in_batches(signature, features: dict[str, np.ndarray], inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    """Call a signature on every row, a bounded batch at a time, and join the outputs."""
    rows = len(next(iter(features.values())))
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, rows, _BATCH):
        feed = {
            key: tf.constant(
                column[start : start + _BATCH].astype(str if inputs[key]["dtype"] == "string" else np.float32)
            )
            for key, column in features.items()
        }
        for key, value in signature(**feed).items():
            parts.setdefault(key, []).append(value.numpy())
    return {key: np.concatenate(chunks) for key, chunks in parts.items()}


def task_metrics(task: str, outputs: dict[str, np.ndarray], target: np.ndarray) -> dict[str, float]:
    """The trainer's metrics, computed from signature outputs with NumPy."""
    if task == "regression":
        metrics = {}
        for name, values in sorted(outputs.items()):
            error = values.astype(np.float64) - target
            prefix = "" if len(outputs) == 1 else f"{name}_"  # as Keras names them
            metrics[f"{prefix}mae"] = float(np.mean(np.abs(error)))
            metrics[f"{prefix}mse"] = float(np.mean(error**2))
        return metrics
    accuracy = float(np.mean(outputs["class_id"] == target))
    if task == "multiclass":
        picked = np.clip(outputs["probabilities"][np.arange(len(target)), target], _EPSILON, 1.0)
        return {"accuracy": accuracy, "loss": float(-np.mean(np.log(picked)))}
    p = np.clip(outputs["probability"].astype(np.float64), _EPSILON, 1 - _EPSILON)
    loss = -np.mean(target * np.log(p) + (1 - target) * np.log(1 - p))
    return {"accuracy": accuracy, "loss": float(loss)}
