"""Losses the zoo's recipes use beyond Keras's names."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="zoo")
class SmoothedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy against integer class ids with label smoothing.

    Keras's `SparseCategoricalCrossentropy` has no `label_smoothing` (its categorical twin
    has, but wants one-hot targets); the zoo's targets stay class ids everywhere else, so the
    ids are one-hot encoded here. Label smoothing (Szegedy et al. 2016) mixes each target with
    the uniform distribution: a cheap regularizer that RealMLP's tuned defaults use for
    classification (Holzmüller, Grinsztajn and Steinwart, "Better by Default", NeurIPS 2024).
    """

    def __init__(self, label_smoothing: float = 0.1, name: str = "smoothed_sparse_categorical_crossentropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        """The smoothed cross-entropy of each row."""
        classes = keras.ops.shape(y_pred)[-1]
        one_hot = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), classes)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        """The smoothing, for a saved model's compile config."""
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def training_loss(name: str, *, label_smoothing: float = 0.0):
    """The Keras loss for a loss name and a recipe's label smoothing.

    Raises:
        ValueError: an unknown loss name, or smoothing on a loss that has none.
    """
    if not label_smoothing:
        return keras.losses.get(name)
    if name == "sparse_categorical_crossentropy":
        return SmoothedSparseCategoricalCrossentropy(label_smoothing)
    if name == "binary_crossentropy":
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)
    if name == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    raise ValueError(f"label smoothing applies to cross-entropy losses, not '{name}'")
