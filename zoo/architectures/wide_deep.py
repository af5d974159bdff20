"""Wide & Deep ("Hands-On ML" ch. 10): a wide path straight to the output beside a deep
ReLU stack, with an auxiliary output on the deep path alone (a regularizer, weighted 0.1).

Two forms: `WideAndDeep`, a subclassed `keras.Model` (registered as Keras-serializable, one
attribute per constructor argument, `get_config` chained), and its functional twin built
with `keras.layers.concatenate`. Both take named feature inputs and return `main` and `aux`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from zoo.architectures.features import choose_features
from zoo.recipe import Recipe
from zoo.registry import register_model

# The book's split of California housing's features: 5 wide, 6 deep (overlapping).
WIDE = ("MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population")
DEEP = ("AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude")
# Both outputs are fit to the target; the auxiliary one (on the deep path alone) regularizes.
RECIPE = Recipe(loss="mse", epochs=100, batch_size=32, patience=10, loss_weights={"main": 0.9, "aux": 0.1})


@keras.saving.register_keras_serializable(package="zoo")
class WideAndDeep(keras.Model):
    """Wide & Deep over named scalar features.

    Args:
        wide_features, deep_features: the feature names of each path.
        units, depth, activation: the deep path's Dense stack.
        wide_mean, wide_variance, deep_mean, deep_variance: each path's standardization,
            from the training split (kept in the config, so a reloaded model needs no data).
    """

    def __init__(self, wide_features, deep_features, units=30, depth=2, activation="relu",
                 wide_mean=None, wide_variance=None, deep_mean=None, deep_variance=None, **kwargs):
        super().__init__(**kwargs)
        self.wide_features = list(wide_features)
        self.deep_features = list(deep_features)
        self.units = units
        self.depth = depth
        self.activation = activation
        self.wide_mean, self.wide_variance = wide_mean, wide_variance
        self.deep_mean, self.deep_variance = deep_mean, deep_variance
        self.wide_normalization = keras.layers.Normalization(mean=wide_mean, variance=wide_variance)
        self.deep_normalization = keras.layers.Normalization(mean=deep_mean, variance=deep_variance)
        # Built here, eagerly: built later inside Keras's symbolic first call, their constant
        # mean and variance would belong to a scratch graph and be unusable afterwards.
        self.wide_normalization.build((None, len(self.wide_features)))
        self.deep_normalization.build((None, len(self.deep_features)))
        self.hidden = [keras.layers.Dense(units, activation=activation) for _ in range(depth)]
        self.main_output = keras.layers.Dense(1, name="main")
        self.aux_output = keras.layers.Dense(1, name="aux")

    @property
    def feature_names(self) -> list[str]:
        """Every input the model takes, once, wide first: the export's signature inputs."""
        return list(dict.fromkeys(self.wide_features + self.deep_features))

    def call(self, inputs):
        """Both paths over the named inputs; returns the `main` and `aux` outputs."""
        wide = self.wide_normalization(keras.ops.stack([inputs[n] for n in self.wide_features], axis=-1))
        deep = self.deep_normalization(keras.ops.stack([inputs[n] for n in self.deep_features], axis=-1))
        for layer in self.hidden:
            deep = layer(deep)
        return {
            "main": self.main_output(keras.ops.concatenate([wide, deep], axis=-1)),
            "aux": self.aux_output(deep),
        }

    def get_config(self):
        """The feature groups, sizes and standardization statistics, for reloading."""
        config = super().get_config()
        config.update({
            "wide_features": self.wide_features, "deep_features": self.deep_features,
            "units": self.units, "depth": self.depth, "activation": self.activation,
            "wide_mean": self.wide_mean, "wide_variance": self.wide_variance,
            "deep_mean": self.deep_mean, "deep_variance": self.deep_variance,
        })
        return config


def _statistics(data, names) -> tuple[list[float], list[float]]:
    columns = np.stack([data.train.features[n] for n in names], axis=1).astype(np.float64)
    return columns.mean(axis=0).tolist(), columns.var(axis=0).tolist()


@register_model(task="regression", dataset="california-housing", recipe=RECIPE)
def wide_and_deep(data, *, wide: Sequence[str] = WIDE, deep: Sequence[str] = DEEP, units: int = 30,
                  depth: int = 2, activation: str = "relu"):
    """Wide & Deep, subclassed: a wide and a deep feature group, outputs main and aux (0.9 / 0.1)."""
    wide, deep = choose_features(data, wide), choose_features(data, deep)
    wide_mean, wide_variance = _statistics(data, wide)
    deep_mean, deep_variance = _statistics(data, deep)
    model = WideAndDeep(wide, deep, units=units, depth=depth, activation=activation,
                        wide_mean=wide_mean, wide_variance=wide_variance,
                        deep_mean=deep_mean, deep_variance=deep_variance, name="wide_and_deep")
    model({name: data.train.features[name][:2] for name in model.feature_names})  # build the weights
    return model


@register_model(task="regression", dataset="california-housing", recipe=RECIPE)
def wide_and_deep_functional(data, *, wide: Sequence[str] = WIDE, deep: Sequence[str] = DEEP,
                             units: int = 30, depth: int = 2, activation: str = "relu"):
    """Wide & Deep, functional API: the same network built with keras.layers.concatenate."""
    wide, deep = choose_features(data, wide), choose_features(data, deep)
    names = list(dict.fromkeys(wide + deep))
    inputs = {name: keras.Input(shape=(), name=name) for name in names}

    def group(members, label):
        columns = [keras.layers.Reshape((1,), name=f"{label}_{n}")(inputs[n]) for n in members]
        stacked = keras.layers.concatenate(columns, name=label)
        normalization = keras.layers.Normalization(name=f"{label}_normalization")
        normalization.adapt(np.stack([data.train.features[n] for n in members], axis=1))
        return normalization(stacked)

    wide_path, deep_path = group(wide, "wide"), group(deep, "deep")
    for index in range(depth):
        deep_path = keras.layers.Dense(units, activation=activation, name=f"hidden_{index + 1}")(deep_path)
    main = keras.layers.Dense(1, name="main")(keras.layers.concatenate([wide_path, deep_path], name="wide_deep"))
    aux = keras.layers.Dense(1, name="aux")(deep_path)
    return keras.Model(inputs, {"main": main, "aux": aux}, name="wide_and_deep_functional")
