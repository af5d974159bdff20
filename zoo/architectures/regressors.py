"""Sequential regressors: the linear unit and the deep ReLU stack of the Kaggle course.

The layers that learn are a `keras.Sequential`, as in the course; it sits behind the
named inputs and the preprocessing from `features.py`, which a Sequential cannot hold.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from zoo.architectures.features import tabular_inputs
from zoo.recipe import Recipe
from zoo.registry import register_model


def _build_regressor(data, *, name: str, features, hidden: Sequence[int], activation: str,
                     dropout: float = 0.0, scale_target: bool = True) -> keras.Model:
    inputs, x = tabular_inputs(data, features)
    layers = []
    for units in hidden:
        layers.append(keras.layers.Dense(units, activation=activation))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(1))
    if scale_target:
        # The net learns the standardized target and this layer maps it back to the target's
        # units (calories, quality points), so training starts near the answer and served
        # predictions need no client-side rescaling.
        mean, std = float(np.mean(data.train.target)), float(np.std(data.train.target)) or 1.0
        layers.append(keras.layers.Rescaling(scale=std, offset=mean, name="target_units"))
    body = keras.Sequential(layers, name=name.replace("-", "_"))
    return keras.Model(inputs, {"prediction": body(x)}, name=name.replace("-", "_"))


# A linear unit is least squares: trained with the loss OLS minimizes, a whole (52-row)
# training split a step, to its minimum. The course's MAE at 0.05 in batches of 16 with
# patience 10 stopped on an 11-row validation split's noise and lost to OLS by 1.6 calories;
# restoring the best validation epoch's weights still did (by 0.8 over five seeds).
@register_model(
    task="regression", dataset="cereals",
    recipe=Recipe(
        loss="mse", learning_rate=0.1, epochs=200, batch_size=64, patience=200, restore_best_weights=False,
        about="least squares: MSE loss, Adam at 0.1 on the whole training split a step, 200 epochs, the "
              "last epoch's weights (a convex problem trained to its minimum: ordinary least squares)",
    ),
)
def linear_unit(data, *, features: Sequence[str] | None = ("sugars", "fiber", "protein"),
                scale_target: bool = True):
    """A single linear unit (one Dense unit): calories from sugars, fiber and protein."""
    return _build_regressor(data, name="linear-unit", features=features, hidden=(),
                            activation="linear", scale_target=scale_target)


@register_model(task="regression", dataset="red-wine", recipe=Recipe(loss="mae", epochs=10, batch_size=256))
def dnn_regressor(
    data,
    *,
    units: int = 512,
    depth: int = 3,
    activation: str = "relu",
    dropout: float = 0.0,
    features: Sequence[str] | None = None,
    scale_target: bool = True,
):
    """A deep ReLU regressor (default 3 x 512, MAE, Adam): wine quality from 11 features."""
    return _build_regressor(
        data, name="dnn-regressor", features=features, hidden=(units,) * depth,
        activation=activation, dropout=dropout, scale_target=scale_target,
    )
