"""Named inputs and the preprocessing every zoo model carries inside it.

Putting the preprocessing in the model (Normalization adapted on the training split,
category lookups, pixel rescaling) is what lets the exported signature take raw, named
features: a client sends `{"alcohol": 9.4, ...}` and never scales anything itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from zoo.datasets import Dataset
from zoo.errors import ConfigError


def choose_features(data: Dataset, names: Sequence[str] | None) -> list[str]:
    """The features a model takes: `names` (checked against the dataset), or all of them."""
    if names is None:
        return list(data.feature_names)
    missing = [name for name in names if name not in data.feature_names]
    if missing:
        raise ConfigError(
            f"dataset '{data.name}' has no feature(s) {', '.join(missing)}; "
            f"its features are: {', '.join(data.feature_names)}"
        )
    return list(names)


def tabular_inputs(data: Dataset, names: Sequence[str] | None = None):
    """One scalar input per column, and the columns as one preprocessed (batch, k) tensor.

    Numbers are standardized with a Normalization layer adapted on the training split;
    text columns are one-hot encoded by a StringLookup adapted on the training split
    (with one slot for categories the training data never saw).

    Returns:
        (inputs, features): a dict of `keras.Input` by name, and the float tensor.
    """
    names = choose_features(data, names)
    inputs, numeric, encoded = {}, [], []
    for name in names:
        spec = data.feature(name)
        if spec.shape != ():
            raise ConfigError(f"feature '{name}' has shape {spec.shape}; a tabular model needs columns")
        if spec.dtype == "string":
            inputs[name] = keras.Input(shape=(), dtype="string", name=name)
            lookup = keras.layers.StringLookup(output_mode="one_hot", name=f"{name}_lookup")
            lookup.adapt(data.train.features[name].astype(str))
            encoded.append(lookup(inputs[name]))
        else:
            inputs[name] = keras.Input(shape=(), dtype="float32", name=name)
            numeric.append(name)
    parts = []
    if numeric:
        columns = [keras.layers.Reshape((1,), name=f"{name}_column")(inputs[name]) for name in numeric]
        stacked = columns[0] if len(columns) == 1 else keras.layers.Concatenate(name="numeric")(columns)
        normalization = keras.layers.Normalization(name="normalization")
        normalization.adapt(np.stack([data.train.features[n] for n in numeric], axis=1))
        parts.append(normalization(stacked))
    parts.extend(encoded)
    features = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)
    return inputs, features


def image_input(data: Dataset, name: str = "image"):
    """The image input, and the image rescaled to [0, 1] by the training split's pixel range.

    Returns:
        (inputs, image): a one-entry dict of `keras.Input`, and the rescaled tensor.
    """
    spec = data.feature(name)
    if len(spec.shape) != 2:
        raise ConfigError(f"feature '{name}' has shape {spec.shape}; an image model needs (height, width)")
    image = keras.Input(shape=spec.shape, dtype="float32", name=name)
    # 16 for scikit-learn's digits, 255 for Fashion-MNIST: read off the data, not assumed.
    pixel_max = float(np.max(data.train.features[name])) or 1.0
    scaled = keras.layers.Rescaling(1.0 / pixel_max, name="rescaling")(image)
    return {name: image}, scaled
