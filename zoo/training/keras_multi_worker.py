"""Two repairs that let Keras 3's TensorFlow trainer run under MultiWorkerMirroredStrategy.

Keras 3.15's `fit` breaks under a multi-worker strategy in two places (reported upstream
as tensorflow/tensorflow#72388, closed without a fix):

1. `_maybe_symbolic_build` takes one batch to build the model's optimizer and metric
   variables, and reduces the whole batch with a single `strategy.reduce`. A multi-worker
   strategy reduces one tensor at a time, so a dict of named inputs (every zoo model)
   fails. Building only needs shapes and dtypes: this worker's own share of the batch
   does, with no collective at all.
2. `reduce_per_replica` reduces the scalar logs of a step with
   `strategy.reduce("MEAN", v, axis=0)`; a scalar has no axis 0. The mean across workers
   (`axis=None`) is what "mean" means for a scalar.

Both repairs change behaviour only under a multi-worker strategy; everything else goes to
Keras's own code. `install()` is idempotent and checks that the patched names still exist,
so a Keras upgrade that moves them fails loudly here instead of hanging a cluster.
"""

from __future__ import annotations

import tensorflow as tf
from keras.src import tree
from keras.src.backend.tensorflow import trainer as tf_trainer

_installed = False


def in_multi_worker_mode(strategy) -> bool:
    """Whether `strategy` spans several workers."""
    # Keras's own test, so the repairs act exactly where Keras's multi-worker branches do.
    return tf_trainer._collective_all_reduce_multi_worker(strategy)


def install() -> None:
    """Apply the repairs to Keras's multi-worker code paths (once a process)."""
    global _installed
    if _installed:
        return
    for owner, name in ((tf_trainer.TensorFlowTrainer, "_maybe_symbolic_build"), (tf_trainer, "reduce_per_replica"),
                        (tf_trainer, "_collective_all_reduce_multi_worker")):
        if not hasattr(owner, name):
            raise RuntimeError(
                f"this Keras ({tf_trainer.__name__}) has no {name}: the multi-worker repairs in "
                f"{__name__} need updating"
            )
    keras_build = tf_trainer.TensorFlowTrainer._maybe_symbolic_build
    keras_reduce = tf_trainer.reduce_per_replica

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is None or not in_multi_worker_mode(strategy):
            return keras_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            data_batch = tree.map_structure(lambda value: _local_part(strategy, value), next(batches))
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if not (reduction in ("auto", "mean") and in_multi_worker_mode(strategy)):
            return keras_reduce(values, strategy, reduction)

        def mean(value):
            if value.shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return keras_reduce(value, strategy, reduction)

        return tree.map_structure(mean, values)

    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    tf_trainer.reduce_per_replica = reduce_per_replica
    _installed = True


def _local_part(strategy, value):
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value
