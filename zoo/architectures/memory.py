"""Answering a repeated training row from memory, as a forest does.

Red Wine Quality repeats itself: 1,599 rows hold 1,359 distinct measurements, and every
repeat carries the same quality. On the zoo's splits 15-23% of the test rows repeat a
training row. A random forest answers those exactly (its fully grown trees keep every
training row in a leaf: 100% accuracy on them, against the MLP's 64-80%), and that alone is
the gap between the networks and the forest there: on the rows that are new, the strong
MLP and the forest are level (bench exploration over five seeds, 2026-11-24: accuracy 0.60
and 0.60 on new rows; with this memory the MLP answers the repeats as the forest does).

`TrainingRowMemory` gives a network the same memory, inside the model, so the export still
takes raw, named features: it keeps the training rows and their targets, and for each input
row says whether it repeats one of them (within a tolerance far below the data's own
resolution, on standardized columns) and the mean target of the rows it repeats. The model
then answers a repeat with that target and any other row with its network. This is the
exact-match limit of retrieval-augmented tabular models, which feed a network the targets
of a row's nearest training rows ("TabR: Tabular Deep Learning Meets Nearest Neighbors",
Gorishniy et al., ICLR 2024); here only an exact repeat is answered from memory, so the
network's answer on new rows is untouched.

The price: the model carries its training rows and targets (in its config, so in model.keras
and the SavedModel), and an answer that is exactly a training target tells a client the row
was trained on. Use it where the training data may travel with the model.

While training, a row must not find itself: the layer drops one match (the row itself, at
distance 0) before averaging, so a training row answers from memory only when it has a twin
(leave-one-out), and the network learns from every row that has none. Which of a row's equal
copies is dropped is arbitrary, so repeats with different targets would let a row see its own
target while training; red wine's repeats all share one quality.
"""

from __future__ import annotations

import keras
import numpy as np

# Squared distance on standardized columns below which two rows are the same measurement:
# the nearest distinct rows of red wine are ~1e-2 apart, float32 round-off is ~1e-5.
SAME_ROW = 1e-4
# The most repeats of one row averaged (red wine's most repeated measurement occurs 4 times).
MOST_REPEATS = 8


@keras.saving.register_keras_serializable(package="zoo")
class TrainingRowMemory(keras.layers.Layer):
    """For each input row: (1 if it repeats a training row else 0, the repeats' mean target).

    Args:
        rows: the training rows, (n, features), in the model's input units.
        targets: their targets, (n, outputs): one-hot classes or target values.

    Call with a (batch, features) tensor; returns `(found, remembered)`, shapes (batch, 1)
    and (batch, outputs); `remembered` is 0 where `found` is 0.
    """

    def __init__(self, rows, targets, **kwargs):
        super().__init__(**kwargs)
        self.rows = np.asarray(rows, dtype=np.float32)
        self.targets = np.asarray(targets, dtype=np.float32).reshape(len(self.rows), -1)
        self._mean = self.rows.mean(axis=0)
        self._scale = np.where(self.rows.std(axis=0) > 0, self.rows.std(axis=0), 1.0).astype(np.float32)
        table = (self.rows - self._mean) / self._scale
        # |z - t|^2 = |z|^2 - 2 z.t + |t|^2: the table's side is constant, so computed once here
        # rather than on every served batch.
        self._table_transposed = np.ascontiguousarray(table.T)
        self._table_norms = np.sum(table * table, axis=1)[None, :]
        self._repeats = min(MOST_REPEATS + 1, len(self.rows))

    def call(self, rows, training=False):
        """Whether each row repeats a training row, and their mean target."""
        z = (rows - self._mean) / self._scale
        # |z - t|^2 expanded: a (batch, n) product rather than a (batch, n, features) difference.
        distance = (keras.ops.sum(z * z, axis=-1, keepdims=True) - 2.0 * keras.ops.matmul(z, self._table_transposed)
                    + self._table_norms)
        nearest, index = keras.ops.top_k(-distance, self._repeats)
        if training:  # leave-one-out: the nearest row is the row itself
            nearest, index = nearest[:, 1:], index[:, 1:]
        else:
            nearest, index = nearest[:, :-1], index[:, :-1]
        same = keras.ops.cast(-nearest < SAME_ROW, "float32")
        targets = keras.ops.take(keras.ops.convert_to_tensor(self.targets), index, axis=0)
        count = keras.ops.sum(same, axis=1, keepdims=True)
        remembered = keras.ops.sum(targets * same[..., None], axis=1) / keras.ops.maximum(count, 1.0)
        return keras.ops.minimum(count, 1.0), remembered

    def compute_output_shape(self, input_shape):
        """(batch, 1) and (batch, outputs)."""
        return (input_shape[0], 1), (input_shape[0], self.targets.shape[1])

    def get_config(self):
        """The rows and targets, so a saved model reloads without its data."""
        return {**super().get_config(), "rows": self.rows.tolist(), "targets": self.targets.tolist()}


def answer_repeats_from_memory(rows, answer, memory: TrainingRowMemory):
    """The model's output: the remembered target for a repeated row, `answer` for the rest."""
    found, remembered = memory(rows)
    return found * remembered + (1.0 - found) * answer
