"""The zoo's strong tabular recipe: Sequential MLPs over piecewise-linear encoded numbers.

The course models (regressors.py, classifiers.py) are kept as their sources teach them, for
their published figures. These are what the zoo recommends for a table of numbers, measured
against scikit-learn on the same rows by `python -m bench quality`:

- Inputs: every number enters twice, standardized, and as its piecewise-linear encoding
  (PLE) over bins cut at the training split's quantiles: "On Embeddings for Numerical
  Features in Tabular Deep Learning", Gorishniy, Rubachev and Babenko, NeurIPS 2022
  (section 3.2). The encoding lets a plain MLP bend where the data is dense, which is what
  tree ensembles do with their splits; bins come from the data, so the layer needs no tuning.
- Body: a Sequential ReLU MLP with light dropout, as the paper's MLP.
- Recipe: AdamW (decoupled weight decay, Loshchilov and Hutter 2019), the learning rate cut
  by 3 on a validation plateau, and patient early stopping with the best weights restored
  (both paper's protocol: patience on the validation split, never the test split).

- Memory (the `ple-memory-*` models): a repeated training row is answered with its target,
  as a forest answers it (see memory.py); every other row by the network.

All preprocessing is inside the model, so the export still takes raw, named features.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np

from zoo.architectures.coordinates import RotatedCoordinates
from zoo.architectures.features import choose_features
from zoo.architectures.memory import TrainingRowMemory, answer_repeats_from_memory
from zoo.errors import ConfigError
from zoo.recipe import Recipe
from zoo.registry import register_model

STRONG = {
    "optimizer": "adamw", "learning_rate": 1e-3, "weight_decay": 1e-4, "epochs": 300, "batch_size": 128,
    "patience": 30, "reduce_lr_patience": 10,
    "about": "strong tabular recipe: standardized + piecewise-linear encoded inputs (Gorishniy et al. "
             "2022), ReLU MLP with dropout, AdamW with weight decay, learning rate / 3 on plateau, "
             "patient early stopping restoring the best weights",
}


@keras.saving.register_keras_serializable(package="zoo")
class PiecewiseLinearEncoding(keras.layers.Layer):
    """PLE: each number as how far it has climbed through each of its feature's bins.

    For bin t of a feature with edges b_0 < ... < b_T: e_t = clip((x - b_{t-1}) / (b_t -
    b_{t-1}), 0, 1). Features with fewer distinct quantiles than bins repeat their last edge;
    those empty bins are masked to 0.

    Args:
        edges: per feature, its T + 1 bin edges (a list of equal-length lists).
    """

    def __init__(self, edges, **kwargs):
        super().__init__(**kwargs)
        self.edges = [list(map(float, row)) for row in edges]
        table = np.asarray(self.edges, dtype=np.float32)
        self._low, high = table[:, :-1], table[:, 1:]
        self._width = np.maximum(high - self._low, np.float32(1e-12))
        self._mask = (high > self._low).astype(np.float32)

    def call(self, numbers):
        """Encode a (batch, features) tensor as (batch, features x bins)."""
        position = (keras.ops.expand_dims(numbers, -1) - self._low) / self._width
        encoded = keras.ops.clip(position, 0.0, 1.0) * self._mask
        return keras.ops.reshape(encoded, (-1, self._mask.size))

    def compute_output_shape(self, input_shape):
        """(batch, features x bins)."""
        return (input_shape[0], self._mask.size)

    def get_config(self):
        """The layer's config, edges included, so a saved model reloads without data."""
        return {**super().get_config(), "edges": self.edges}


def quantile_edges(columns: np.ndarray, bins: int) -> list[list[float]]:
    """Each column's bin edges at its quantiles, padded to bins + 1 by repeating the last."""
    edges = []
    for column in columns.T:
        cuts = np.unique(np.quantile(column, np.linspace(0.0, 1.0, bins + 1)))
        edges.append(np.concatenate([cuts, np.repeat(cuts[-1], bins + 1 - len(cuts))]).tolist())
    return edges


def encoded_inputs(data, names: Sequence[str] | None, bins: int, coordinates: Sequence[str] | None = None):
    """Named scalar inputs, the raw numbers as one (batch, k) tensor, and the numbers
    standardized beside their PLE.

    Args:
        coordinates: the names of a latitude and a longitude feature: their projections on
            rotated axes (see coordinates.py) are encoded beside the numbers.
    """
    names = choose_features(data, names)
    for name in names:
        spec = data.feature(name)
        if spec.shape != () or spec.dtype != "float32":
            raise ConfigError(f"feature '{name}' is not a number column; the PLE models take numbers only")
    inputs = {name: keras.Input(shape=(), dtype="float32", name=name) for name in names}
    columns = [keras.layers.Reshape((1,), name=f"{name}_column")(inputs[name]) for name in names]
    numbers = columns[0] if len(columns) == 1 else keras.layers.Concatenate(name="numbers")(columns)
    train = np.stack([data.train.features[name] for name in names], axis=1).astype(np.float32)
    encoded = numbers
    if coordinates is not None:
        if len(coordinates) != 2 or any(name not in names for name in coordinates):
            raise ConfigError(f"coordinates must name a latitude and a longitude feature among {', '.join(names)}, "
                              f"got {list(coordinates)}")
        where = [names.index(name) for name in coordinates]
        rotations = RotatedCoordinates(name="rotated_coordinates")
        position = keras.layers.Concatenate(name="position")([columns[i] for i in where])
        encoded = keras.layers.Concatenate(name="numbers_and_rotations")([numbers, rotations(position)])
        train = np.concatenate([train, np.asarray(rotations(train[:, where]))], axis=1)
    normalization = keras.layers.Normalization(name="normalization")
    normalization.adapt(train)
    encoding = PiecewiseLinearEncoding(quantile_edges(train, bins), name="piecewise_linear")
    features = keras.layers.Concatenate(name="features")([normalization(encoded), encoding(encoded)])
    return inputs, numbers, features


def _training_rows(data, names: Sequence[str] | None) -> np.ndarray:
    names = choose_features(data, names)
    return np.stack([data.train.features[name] for name in names], axis=1).astype(np.float32)


def _mlp(hidden: Sequence[int], dropout: float) -> list[keras.layers.Layer]:
    layers = []
    for units in hidden:
        layers.append(keras.layers.Dense(units, activation="relu"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    return layers


@register_model(task="regression", dataset="red-wine", also_runs_on=("california-housing",),
                recipe=Recipe(loss="mae", **STRONG))
def ple_mlp_regressor(data, *, hidden: Sequence[int] = (256, 256), dropout: float = 0.1, bins: int = 32,
                      features: Sequence[str] | None = None, remember: bool = False,
                      coordinates: Sequence[str] | None = None):
    """PLE MLP regressor (the zoo's strong recipe): PLE + standardized inputs, 2 x 256 ReLU."""
    inputs, numbers, x = encoded_inputs(data, features, bins, coordinates)
    mean, std = float(np.mean(data.train.target)), float(np.std(data.train.target)) or 1.0
    body = keras.Sequential([*_mlp(hidden, dropout), keras.layers.Dense(1),
                             keras.layers.Rescaling(scale=std, offset=mean, name="target_units")],
                            name="ple_mlp_regressor")
    prediction = body(x)
    if remember:
        memory = TrainingRowMemory(_training_rows(data, features), data.train.target, name="training_rows")
        prediction = answer_repeats_from_memory(numbers, prediction, memory)
    return keras.Model(inputs, {"prediction": prediction}, name="ple_mlp_regressor")


# Label smoothing 0.1 (RealMLP's classification default, Holzmüller et al. 2024): on red wine
# over five seeds, 0.6075 accuracy without, 0.6246 with (bench exploration, 2026-11-24).
CLASSIFIER = Recipe(loss="sparse_categorical_crossentropy", label_smoothing=0.1,
                    **{**STRONG, "about": STRONG["about"] + ", label smoothing 0.1"})
MEMORY = "; a repeated training row answered with its target (exact-match memory, cf. TabR, Gorishniy et al. 2024)"


@register_model(task="multiclass", dataset="red-wine", recipe=CLASSIFIER)
def ple_mlp_classifier(data, *, hidden: Sequence[int] = (256, 256), dropout: float = 0.1, bins: int = 32,
                       features: Sequence[str] | None = None, remember: bool = False):
    """PLE MLP softmax classifier (the zoo's strong recipe): PLE + standardized inputs, 2 x 256 ReLU."""
    inputs, numbers, x = encoded_inputs(data, features, bins)
    classes = len(data.class_names)
    body = keras.Sequential([*_mlp(hidden, dropout), keras.layers.Dense(classes, activation="softmax")],
                            name="ple_mlp_classifier")
    probabilities = body(x)
    if remember:
        one_hot = np.eye(classes, dtype=np.float32)[np.asarray(data.train.target, dtype=np.int64)]
        memory = TrainingRowMemory(_training_rows(data, features), one_hot, name="training_rows")
        probabilities = answer_repeats_from_memory(numbers, probabilities, memory)
    return keras.Model(inputs, {"probabilities": probabilities}, name="ple_mlp_classifier")


@register_model(task="binary", dataset="coffee-roasting",
                recipe=Recipe(loss="binary_crossentropy", **{**STRONG, "batch_size": 32}))
def ple_mlp_binary(data, *, hidden: Sequence[int] = (256, 256), dropout: float = 0.1, bins: int = 32,
                   features: Sequence[str] | None = None):
    """PLE MLP sigmoid classifier (the zoo's strong recipe): PLE + standardized inputs, 2 x 256 ReLU."""
    inputs, _, x = encoded_inputs(data, features, bins)
    body = keras.Sequential([*_mlp(hidden, dropout), keras.layers.Dense(1, activation="sigmoid")],
                            name="ple_mlp_binary")
    return keras.Model(inputs, {"probability": body(x)}, name="ple_mlp_binary")


# Three members from different initial weights, averaged: on coffee roasting over five seeds,
# 0.9796 accuracy alone, 0.9827 averaged (bench exploration, 2026-11-24).
register_model(
    task="binary", dataset="coffee-roasting", name="ple-mlp-binary-ensemble",
    recipe=Recipe(loss="binary_crossentropy", **{**STRONG, "batch_size": 32, "members": 3,
                                                 "about": STRONG["about"] + "; 3 seeds averaged"}),
)(ple_mlp_binary)


# Red wine repeats 15-23% of each test split's rows from its training rows: answered from
# memory, over five seeds, 0.6246 -> 0.6679 accuracy and 0.0878 -> 0.0822 MAE, the forest's
# way of winning there (see memory.py; bench exploration, 2026-11-24).
@register_model(task="multiclass", dataset="red-wine",
                recipe=dataclasses.replace(CLASSIFIER, about=CLASSIFIER.about + MEMORY))
def ple_memory_classifier(data, *, hidden: Sequence[int] = (256, 256), dropout: float = 0.1, bins: int = 32,
                          features: Sequence[str] | None = None):
    """PLE MLP softmax classifier that answers a repeated training row from memory, as a forest does."""
    return ple_mlp_classifier(data, hidden=hidden, dropout=dropout, bins=bins, features=features, remember=True)


@register_model(task="regression", dataset="red-wine",
                recipe=Recipe(loss="mae", **{**STRONG, "about": STRONG["about"] + MEMORY}))
def ple_memory_regressor(data, *, hidden: Sequence[int] = (256, 256), dropout: float = 0.1, bins: int = 32,
                         features: Sequence[str] | None = None):
    """PLE MLP regressor that answers a repeated training row from memory, as a forest does."""
    return ple_mlp_regressor(data, hidden=hidden, dropout=dropout, bins=bins, features=features, remember=True)


@register_model(task="regression", dataset="california-housing",
                recipe=Recipe(loss="mse", **{**STRONG, "about": STRONG["about"] + "; the position also along "
                                             "rotated axes (see zoo/architectures/coordinates.py)"}))
def ple_geo_regressor(data, *, hidden: Sequence[int] = (256, 256), dropout: float = 0.1, bins: int = 32,
                      features: Sequence[str] | None = None,
                      coordinates: Sequence[str] = ("Latitude", "Longitude")):
    """PLE MLP regressor for places: the latitude and longitude also encoded along rotated axes."""
    return ple_mlp_regressor(data, hidden=hidden, dropout=dropout, bins=bins, features=features,
                             coordinates=coordinates)
