"""Models the serving tests build: TF Serving's half_plus_two, and a deliberately slow one."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from zoo.protocol.names import REGRESS_METHOD
from zoo.repository.export import REGRESS_SIGNATURE, mark_example_signatures


class HalfPlus(tf.Module):
    """y = 0.5 * x + offset: TF Serving's documented test model (half_plus_two)."""

    def __init__(self, offset: float):
        super().__init__()
        self.offset = tf.Variable(offset)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def predict(self, x):
        return {"y": 0.5 * x + self.offset}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(self, inputs):
        parsed = tf.io.parse_example(inputs, {"x": tf.io.FixedLenFeature([], tf.float32)})
        return {"outputs": 0.5 * parsed["x"] + self.offset}


def write_half_plus(path: Path, offset: float) -> Path:
    """Write the model as a version folder, renamed into place as the zoo's exports are."""
    module = HalfPlus(offset)
    staging = path.parent / f".incoming-{path.name}"
    tf.saved_model.save(module, str(staging), signatures={
        "serving_default": module.predict, REGRESS_SIGNATURE: module.regress,
    })
    mark_example_signatures(staging, {REGRESS_SIGNATURE: REGRESS_METHOD})
    staging.rename(path)
    return path


class Slow(tf.Module):
    """y = x, after enough matrix products to take a few hundred milliseconds."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def predict(self, x):
        matrix = tf.random.stateless_uniform([256, 256], seed=[1, 2])

        def body(i, total):
            # The product depends on the loop counter, so no optimizer can hoist it out.
            step = matrix + tf.cast(i, tf.float32)
            return i + 1, total + tf.reduce_mean(tf.matmul(step, step)) * 0.0

        _, total = tf.while_loop(lambda i, _: i < 1500, body, [tf.constant(0), tf.constant(0.0)])
        return {"y": x + total}


def write_slow(path: Path) -> Path:
    module = Slow()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.predict})
    return path
