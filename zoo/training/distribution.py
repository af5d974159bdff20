"""tf.distribute for the trainer: one device (the default), every device of this machine,
or several machines.

`--strategy mirrored` replicates the model on each local device (GPUs; the CPU where there
are none) with MirroredStrategy. `--strategy multi-worker` trains one model on every worker
of the cluster that TF_CONFIG describes (MultiWorkerMirroredStrategy): each worker runs the
same command, takes its share of every batch, and the gradients are all-reduced. One
worker, the chief, writes the run and exports the version; see `Role`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os

from zoo.errors import ConfigError

STRATEGIES = ("mirrored", "multi-worker")


class _OneDevice:
    num_replicas_in_sync = 1

    def scope(self):
        return contextlib.nullcontext()


def strategy(name: str | None):
    """The tf.distribute strategy a config names (the default strategy for None)."""
    if name is None:
        return _OneDevice()
    if name == "mirrored":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        role()  # a clear error for a missing or malformed TF_CONFIG, before TF reads it
        import tensorflow as tf

        from zoo.training import keras_multi_worker

        keras_multi_worker.install()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"unknown strategy '{name}'; use: {', '.join(STRATEGIES)}")


@dataclasses.dataclass(frozen=True)
class Role:
    """This process's place in a multi-worker cluster.

    TensorFlow's convention: the task of type "chief" is the chief; in a cluster of workers
    only, worker 0 is. Every worker must run every step that holds a collective (fit,
    evaluate, saving the model), so the others run the whole trainer too, writing into a
    folder of their own under the chief's run folder, and export into a scratch folder that
    is deleted: only the chief publishes a version.
    """

    task_type: str
    task_index: int
    is_chief: bool

    @property
    def name(self) -> str:
        """The worker's name: chief, or worker-N."""
        return f"{self.task_type}-{self.task_index}"


SINGLE = Role("chief", 0, True)


def role(strategy_name: str | None = "multi-worker") -> Role:
    """The role TF_CONFIG gives this process (the chief's, when not multi-worker)."""
    if strategy_name != "multi-worker":
        return SINGLE
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError(
            "--strategy multi-worker needs TF_CONFIG: JSON with the cluster and this worker's task, "
            'e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    try:
        tf_config = json.loads(raw)
        cluster, task = tf_config["cluster"], tf_config["task"]
        task_type, task_index = str(task["type"]), int(task["index"])
        addresses = cluster[task_type]
    except (ValueError, TypeError, KeyError) as error:
        raise ConfigError(
            f"TF_CONFIG must be JSON with cluster.<type> (a list of host:port) and task.type and "
            f"task.index naming one of them ({type(error).__name__}: {error})"
        ) from None
    if not isinstance(addresses, list) or not 0 <= task_index < len(addresses):
        raise ConfigError(
            f"TF_CONFIG task.index {task_index} is not in cluster.{task_type} ({addresses!r})"
        )
    is_chief = task_type == "chief" or (task_type == "worker" and task_index == 0 and "chief" not in cluster)
    return Role(task_type, task_index, is_chief)


def dataset(x, y, batch_size: int, shuffle_seed: int | None = None):
    """A batched tf.data pipeline over (features, target), shuffled when given a seed."""
    import tensorflow as tf

    pipeline = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        pipeline = pipeline.shuffle(len(next(iter(x.values()))), seed=shuffle_seed, reshuffle_each_iteration=True)
    # In memory, there are no files to shard: each worker takes its share of every batch
    # (the policy AUTO falls back to, with a warning on every worker).
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return pipeline.batch(batch_size).with_options(options)
