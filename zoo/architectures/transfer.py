"""Transfer learning, as the Keras guide does it: model B reuses the hidden layers of a
trained model A under a new head. The reused layers form one sub-model named "base",
called with `training=False` (so BatchNormalization and Dropout stay in inference mode)
and built frozen; the recipe's second phase unfreezes it and recompiles at a low learning
rate (see `zoo.recipe.Phase`). A's own weights are never touched:
its layers are cloned, then given A's weights.
"""

from __future__ import annotations

from pathlib import Path

import keras

from zoo.architectures.features import image_input
from zoo.errors import ConfigError
from zoo.recipe import Phase, Recipe
from zoo.registry import register_model


def load_source(source) -> keras.Model:
    """Model A: a Keras model, a `.keras` file, or a zoo version folder holding one."""
    if isinstance(source, keras.Model):
        return source
    if source is None:
        raise ConfigError(
            "transfer-mlp needs model A: --set source=models/<name>/<version> (or a .keras file)"
        )
    path = Path(source)
    path = path / "model.keras" if path.is_dir() else path
    if not path.is_file():
        raise ConfigError(f"transfer-mlp: no Keras model at {path}")
    import zoo.architectures  # noqa: F401  (A may use the zoo's serializable classes)

    return keras.saving.load_model(path, compile=False)  # its layers are reused, not its loss


def hidden_layers(model_a: keras.Model) -> list[keras.layers.Layer]:
    """A's layers after its preprocessing and before its output layer."""
    bodies = [layer for layer in model_a.layers if isinstance(layer, keras.Sequential)]
    if len(bodies) != 1 or len(model_a.inputs) != 1:
        raise ConfigError("transfer-mlp: model A must be a zoo image MLP (one input, one Sequential body)")
    return bodies[0].layers[:-1]


def clone_base(model_a: keras.Model) -> keras.Sequential:
    """A copy of A's hidden layers, with A's weights, sharing nothing with A."""
    layers = hidden_layers(model_a)
    base = keras.Sequential([layer.__class__.from_config(layer.get_config()) for layer in layers], name="base")
    base.build(model_a.inputs[0].shape)  # the body sees the rescaled image: the input's shape
    for copy, original in zip(base.layers, layers):
        copy.set_weights(original.get_weights())
    return base


def fresh_base(model_a: keras.Model) -> keras.Sequential:
    """A's hidden layers, newly initialized."""
    base = keras.Sequential([layer.__class__.from_config(layer.get_config()) for layer in hidden_layers(model_a)],
                            name="base")
    base.build(model_a.inputs[0].shape)
    return base


@register_model(
    task="binary", dataset="digits", dataset_options={"classes": ["8", "9"], "max_train_rows": 200},
    recipe=Recipe(
        loss="binary_crossentropy", learning_rate=1e-3, epochs=40, batch_size=16, patience=10,
        # The head learns on the frozen base first; then everything, at a tenth of the rate.
        phases=(Phase(epochs=10), Phase(learning_rate=1e-4, unfreeze=True)),
    ),
)
def transfer_mlp(data, *, source=None, pretrained: bool = True):
    """Model B from the hidden layers of a trained model A, a new head, base frozen then fine-tuned.

    With `pretrained=False` the base has A's architecture but fresh weights and is trained
    from the start: the from-scratch baseline that transfer is measured against.
    """
    model_a = load_source(source)
    base = clone_base(model_a) if pretrained else fresh_base(model_a)
    base.trainable = not pretrained
    inputs, image = image_input(data)
    hidden = base(image, training=False)
    if data.task == "binary":
        head = keras.layers.Dense(1, activation="sigmoid", name="head")
        return keras.Model(inputs, {"probability": head(hidden)}, name="transfer_mlp")
    head = keras.layers.Dense(len(data.class_names), activation="softmax", name="head")
    return keras.Model(inputs, {"probabilities": head(hidden)}, name="transfer_mlp")
