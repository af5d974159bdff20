"""tf.distribute for the trainer: one device (the default) or every device of this machine.

`--strategy mirrored` replicates the model on each local device (GPUs; the CPU where there
are none) with MirroredStrategy. Multi-worker training is not offered: with Keras 3.15,
MultiWorkerMirroredStrategy fails inside `fit` on models with named (dict) inputs, as
every zoo model has (see the project notes).
"""

from __future__ import annotations

import contextlib

from zoo.errors import ConfigError

STRATEGIES = ("mirrored",)


class _OneDevice:
    def scope(self):
        return contextlib.nullcontext()


def strategy(name: str | None):
    if name is None:
        return _OneDevice()
    if name == "mirrored":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy()
    raise ConfigError(f"unknown strategy '{name}'; use: {', '.join(STRATEGIES)}")


def dataset(x, y, batch_size: int, shuffle_seed: int | None = None):
    """A batched tf.data pipeline over (features, target), shuffled when given a seed."""
    import tensorflow as tf

    pipeline = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        pipeline = pipeline.shuffle(len(next(iter(x.values()))), seed=shuffle_seed, reshuffle_each_iteration=True)
    return pipeline.batch(batch_size)
