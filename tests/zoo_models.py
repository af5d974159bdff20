"""Every registered model, built offline for the tests: on its default dataset, or on one
it also runs on when the default needs a download (Fashion-MNIST), and with a small model A
when it is a transfer model."""

from __future__ import annotations

import numpy as np

from zoo.errors import DatasetError
from zoo.registry import TASK_OUTPUTS, create_model, model_info


def offline_data(info, load):
    for dataset in (info.dataset, *info.also_runs_on):
        options = info.dataset_options if dataset == info.dataset else {}
        try:
            return load(dataset, task=info.task, **options)
        except DatasetError:
            continue
    raise DatasetError(f"model '{info.name}': none of its datasets is available offline")


def build(name, load):
    """(info, data, model) for a registered model, built untrained on offline data."""
    info = model_info(name)
    data = offline_data(info, load)
    overrides = {}
    if "source" in info.hyperparameters:  # transfer learning needs a model A to start from
        source_data = load("digits", classes=[str(d) for d in range(8)])
        overrides["source"] = create_model("digits-mlp", source_data)
    return info, data, create_model(name, data, **overrides)


def keras_outputs(info) -> tuple[str, ...]:
    """The Keras model's output names (the served outputs add class ids and labels)."""
    return tuple(info.recipe.loss_weights) if info.recipe.loss_weights else TASK_OUTPUTS[info.task][:1]


def served(info, keras_values: dict) -> dict[str, np.ndarray]:
    """What the serving signature returns for the Keras model's outputs."""
    result = {}
    for name, value in keras_values.items():
        value = np.asarray(value)
        result[name] = value[:, 0] if value.ndim == 2 and value.shape[1] == 1 else value
    return result
